"""Credentials, device connections and commands (controller-api.txt), mounted at /api/v1/ with the spec's paths."""

from netfleet.core.api.routers import NetfleetRouter

from . import views

app_name = "connections-api"

DEVICE = r"controller/device/(?P<device_pk>[^/.]+)"

router = NetfleetRouter()
router.register("connection/credential", views.CredentialsViewSet, basename="credential")
router.register(f"{DEVICE}/connection", views.DeviceConnectionViewSet, basename="device-connection")
router.register(f"{DEVICE}/command", views.CommandViewSet, basename="device-command")

urlpatterns = router.urls
