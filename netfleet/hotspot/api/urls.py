from netfleet.core.api.routers import NetfleetRouter

from . import views

app_name = "hotspot-api"

router = NetfleetRouter()
router.register("hotspot/packages", views.PackageViewSet, basename="package")
router.register("routers", views.RouterHotspotViewSet, basename="router-hotspot")

urlpatterns = router.urls
