"""Firmware categories, builds, images, upgrades and mass upgrades (firmware-api.txt), mounted at /api/v1/ with the
spec's paths."""

from django.urls import path

from netfleet.core.api.routers import NetfleetRouter

from . import views

app_name = "firmware-api"

PREFIX = "firmware-upgrader"

router = NetfleetRouter()
router.register(f"{PREFIX}/category", views.CategoryViewSet, basename="category")
router.register(f"{PREFIX}/build", views.BuildViewSet, basename="build")
router.register(rf"{PREFIX}/build/(?P<build_pk>[^/.]+)/image", views.FirmwareImageViewSet, basename="image")
router.register(f"{PREFIX}/upgrade-operation", views.UpgradeOperationViewSet, basename="upgrade-operation")
router.register(
    f"{PREFIX}/batch-upgrade-operation", views.BatchUpgradeOperationViewSet, basename="batch-upgrade-operation"
)
router.register(
    rf"{PREFIX}/device/(?P<device_pk>[^/.]+)/upgrade-operation",
    views.DeviceUpgradeOperationViewSet,
    basename="device-upgrade-operation",
)

urlpatterns = [
    path(f"{PREFIX}/device/<str:pk>/firmware/", views.DeviceFirmwareView.as_view(), name="device-firmware"),
    *router.urls,
]
