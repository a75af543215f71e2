"""The monitoring routes (monitoring-api.txt), mounted at /api/v1/ with the spec's paths."""

from django.urls import path

from netfleet.core.api.routers import NetfleetRouter

from . import alerts, views

app_name = "monitoring-api"

router = NetfleetRouter()
router.register("monitoring/wifi-session", views.WifiSessionViewSet, basename="wifi-session")
router.register("monitoring/alert-channel", alerts.AlertChannelSettingsViewSet, basename="alert-channel")
router.register("monitoring/maintenance-window", alerts.MaintenanceWindowViewSet, basename="maintenance-window")
router.register(
    r"monitoring/device/(?P<device_pk>[^/.]+)/alert-settings",
    alerts.DeviceAlertSettingsViewSet,
    basename="device-alert-settings",
)

urlpatterns = [
    path("monitoring/device/", views.DeviceMonitoringViewSet.as_view({"get": "list"}), name="device-list"),
    path("monitoring/device/<str:pk>/", views.DeviceMetricView.as_view(), name="device-metric"),
    path("monitoring/device/<str:pk>/nearby-devices/", views.NearbyDeviceView.as_view(), name="nearby-devices"),
    path("monitoring/dashboard/", views.DashboardView.as_view(), name="dashboard"),
    *router.urls,
]
