"""The controller's REST routes (controller-api.txt) and the platform's device list (platform-api.txt), mounted
at /api/v1/ with the spec's paths."""

from django.urls import path

from netfleet.core.api.routers import NetfleetRouter

from . import views

app_name = "controller-api"

router = NetfleetRouter()
router.register("controller/device", views.DeviceViewSet, basename="device")
router.register("controller/template", views.TemplateViewSet, basename="template")
router.register("controller/group", views.DeviceGroupViewSet, basename="group")
router.register("devices", views.PlatformDeviceViewSet, basename="platform-device")

urlpatterns = [
    path("controller/cert/<str:common_name>/group/", views.CertificateGroupView.as_view(), name="cert-group"),
    path(
        "controller/organization/<str:organization_id>/config-settings/",
        views.OrganizationConfigSettingsView.as_view(),
        name="organization-config-settings",
    ),
    *router.urls,
]
