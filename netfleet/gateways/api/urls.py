from netfleet.core.api.routers import NetfleetRouter

from . import views

app_name = "gateways-api"

router = NetfleetRouter()
router.register("routers", views.GatewayViewSet, basename="router")

urlpatterns = router.urls
