from netfleet.core.api.routers import NetfleetRouter

from . import views

app_name = "accounts-api"

router = NetfleetRouter()
router.register("sites", views.SiteViewSet, basename="site")

urlpatterns = router.urls
