"""Geometry parsing and the models' rules, as the shell and the admin hit them."""

import pytest
from django.core.exceptions import ValidationError

from netfleet.controller.factories import make_device
from netfleet.geo.geometry import parse_geometry
from netfleet.geo.models import DeviceLocation, FloorPlan, Location

from .helpers import POINT, upload


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("POINT (12.512124 41.898903)", POINT),
        ("  point(12.512124 41.898903) ", POINT),
        ('{"type": "Point", "coordinates": [12.512124, 41.898903]}', POINT),
        ({"type": "Feature", "geometry": POINT, "properties": {}}, POINT),
        ({"type": "Point", "coordinates": "[12.512124, 41.898903]"}, POINT),
        ({"type": "Point", "coordinates": [1, 2, 30]}, {"type": "Point", "coordinates": [1.0, 2.0, 30.0]}),
        (
            "LINESTRING (0 0, 1 1)",
            {"type": "LineString", "coordinates": [[0.0, 0.0], [1.0, 1.0]]},
        ),
        (
            {"type": "GeometryCollection", "geometries": [POINT]},
            {"type": "GeometryCollection", "geometries": [POINT]},
        ),
    ],
)
def test_parse_geometry(value, expected):
    assert parse_geometry(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "POINT (nan 1)",
        "POINT (1 inf)",
        "{not json",
        {"type": "Feature"},
        {"type": "GeometryCollection", "geometries": "x"},
        {"type": "MultiPoint", "coordinates": [1, 2]},
        {"type": "Point", "coordinates": [True, 2]},
        None,
    ],
)
def test_parse_geometry_refuses(value):
    with pytest.raises(ValidationError):
        parse_geometry(value)


@pytest.mark.django_db
class TestModelRules:
    def test_location_clean_normalises_wkt(self, organization):
        location = Location(organization=organization, name="HQ", geometry="POINT (12.512124 41.898903)")
        location.full_clean()
        assert location.geometry == POINT

    def test_floorplan_only_indoors(self, organization, media):
        location = Location.objects.create(organization=organization, name="Park", geometry=POINT)
        plan = FloorPlan(organization=organization, location=location, floor=1, image=upload())
        with pytest.raises(ValidationError) as caught:
            plan.full_clean()
        assert "location" in caught.value.message_dict

    def test_device_location_in_the_devices_organization(self, organization, other_organization):
        location = Location.objects.create(organization=other_organization, name="HQ", geometry=POINT)
        with pytest.raises(ValidationError) as caught:
            DeviceLocation(device=make_device(organization), location=location).full_clean()
        assert "location" in caught.value.message_dict
