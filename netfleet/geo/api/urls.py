"""Locations, floor plans and device positions (controller-api.txt), mounted at /api/v1/ with the spec's paths."""

from django.urls import path

from netfleet.core.api.routers import NetfleetRouter

from . import views

app_name = "geo-api"

router = NetfleetRouter()
router.register("controller/location", views.LocationViewSet, basename="location")
router.register("controller/floorplan", views.FloorPlanViewSet, basename="floorplan")

urlpatterns = [
    # before the router's `controller/location/<pk>/`, which would take "geojson" for an id
    path("controller/location/geojson/", views.LocationGeoJSONView.as_view(), name="location-geojson"),
    path("controller/device/<str:pk>/location/", views.DeviceLocationView.as_view(), name="device-location"),
    path("controller/device/<str:pk>/coordinates/", views.DeviceCoordinatesView.as_view(), name="device-coordinates"),
    *router.urls,
]
