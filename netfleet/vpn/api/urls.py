"""VPN servers (controller-api.txt) and IP pools, mounted at /api/v1/ with their full paths."""

from netfleet.core.api.routers import NetfleetRouter

from . import views

app_name = "vpn-api"

router = NetfleetRouter()
router.register("controller/vpn", views.VpnViewSet, basename="vpn")
router.register("ipam/subnet", views.SubnetViewSet, basename="subnet")

urlpatterns = router.urls
