"""Service-level guarantees about image files that HTTP tests cannot provoke: a write that fails after storing an
image removes it again."""

import pytest
from django.core.exceptions import ValidationError

from netfleet.controller.factories import make_device
from netfleet.geo import services
from netfleet.geo.models import DeviceLocation, FloorPlan

from .helpers import POINT, stored_files, upload

pytestmark = pytest.mark.django_db


def test_failed_write_removes_the_image_it_stored(organization, other_organization, media):
    foreign = services.create_location(organization=other_organization, name="HQ", type="indoor", geometry=POINT)
    device = make_device(organization)
    with pytest.raises(ValidationError):
        # the floor plan (and its file) is stored first; placing the device then fails: another organization
        services.set_device_location(device=device, location=foreign, floorplan_data={"floor": 1, "image": upload()})
    assert not FloorPlan.objects.exists() and not DeviceLocation.objects.exists()
    assert stored_files(media) == []


def test_failed_floorplan_save_keeps_no_file(organization, media):
    location = services.create_location(organization=organization, name="HQ", type="indoor", geometry=POINT)
    services.create_floorplan(location=location, floor=1, image=upload())
    with pytest.raises(ValidationError):
        services.create_floorplan(location=location, floor=1, image=upload())  # the floor is taken
    assert FloorPlan.objects.count() == 1 and len(stored_files(media)) == 1
