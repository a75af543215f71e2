"""routers-api.txt: /routers/… (MikroTik gateways and their hotspot packages)."""

from netfleet.core.api.routers import NetfleetRouter
from netfleet.hotspot.api import views as hotspot_views

from .api import views

app_name = "routers"

router = NetfleetRouter()
router.register("packages", hotspot_views.PackageFaceViewSet, basename="package")
router.register("", views.RouterViewSet, basename="router")
router.register("", hotspot_views.RouterHotspotFaceViewSet, basename="router-hotspot")

urlpatterns = router.urls
