"""`controller/device/{id}/location/` over HTTP: every PUT form of controller-api.txt (existing ids, a nested new
location, nested location and floor plan in multipart, an existing location with a new floor plan), GET, DELETE."""

import pytest

from netfleet.accounts.roles import Role
from netfleet.controller.factories import make_device
from netfleet.controller.models import Device
from netfleet.geo import services
from netfleet.geo.models import DeviceLocation, FloorPlan, Location

from .helpers import POINT, error_of, fields_of, stored_files, upload

pytestmark = pytest.mark.django_db


def url(device):
    return f"/api/v1/controller/device/{device.pk}/location/"


def make_location(organization, name="HQ", type="indoor", **fields):
    return services.create_location(organization=organization, name=name, type=type, geometry=POINT, **fields)


@pytest.fixture
def device(organization):
    return make_device(organization)


NESTED_LOCATION = {
    "name": "Via del Corso",
    "address": "Via del Corso, Roma, Italia",
    "geometry": {"type": "Point", "coordinates": [12.512124, 41.898903]},
    "type": "outdoor",
}


def multipart_location_and_floorplan(**overrides):
    """The multipart body of the spec's "location and floor plan in one request" curl example."""
    form = {
        "location.name": "Via del Corso",
        "location.address": "Via del Corso, Roma, Italia",
        "location.geometry.type": "Point",
        "location.geometry.coordinates": "[12.512124, 41.898903]",
        "location.type": "indoor",
        "floorplan.floor": "1",
        "floorplan.image": upload(),
    }
    form.update(overrides)
    return form


class TestPutForms:
    def test_existing_ids(self, operator, organization, device):
        location = make_location(organization)
        plan = services.create_floorplan(location=location, floor=1, image=upload())
        payload = {"location": str(location.pk), "floorplan": str(plan.pk), "indoor": "-36,264"}
        response = operator.put(url(device), payload, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"device", "location", "floorplan", "indoor", "created", "modified"}
        assert body["device"] == str(device.pk) and body["indoor"] == "-36,264"
        assert body["location"]["id"] == str(location.pk) and body["location"]["geometry"] == POINT
        assert body["floorplan"]["id"] == str(plan.pk) and body["floorplan"]["image"].endswith(f"{plan.pk}/image/")
        assert operator.get(url(device)).json() == body

    def test_nested_new_location_geojson(self, operator, organization, device):
        response = operator.put(url(device), {"location": NESTED_LOCATION}, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        location = Location.objects.get()
        assert body["location"]["id"] == str(location.pk) and location.organization == organization
        assert body["location"]["geometry"] == POINT and body["location"]["type"] == "outdoor"
        assert body["floorplan"] is None and body["indoor"] is None

    def test_nested_new_location_wkt(self, operator, device):
        nested = {**NESTED_LOCATION, "geometry": "POINT (12.512124 41.898903)"}
        response = operator.put(url(device), {"location": nested}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["location"]["geometry"] == POINT

    def test_multipart_nested_location_and_floorplan(self, operator, organization, device, media):
        response = operator.put(url(device), multipart_location_and_floorplan(), format="multipart")
        assert response.status_code == 200, response.content
        body = response.json()
        location, plan = Location.objects.get(), FloorPlan.objects.get()
        assert (location.name, location.type, location.geometry) == ("Via del Corso", "indoor", POINT)
        assert plan.location == location and plan.floor == 1 and plan.organization == organization
        assert body["floorplan"]["id"] == str(plan.pk) and body["location"]["floorplans"][0]["id"] == str(plan.pk)
        assert stored_files(media) == [plan.image.name.split("/")[1]]
        assert DeviceLocation.objects.get(device=device).floorplan == plan

    def test_multipart_nested_location_with_indoor_point(self, operator, device):
        form = multipart_location_and_floorplan(indoor="12,34")
        response = operator.put(url(device), form, format="multipart")
        assert response.status_code == 200, response.content
        assert response.json()["indoor"] == "12,34"

    def test_floorplan_with_an_outdoor_nested_location_stores_nothing(self, operator, device, media):
        # the spec's JSON listing of this example says "outdoor": a floor plan needs an indoor location
        form = multipart_location_and_floorplan(**{"location.type": "outdoor"})
        error = error_of(operator.put(url(device), form, format="multipart"), 422)
        assert "indoor" in fields_of(error)["body.floorplan"]
        assert not Location.objects.exists() and not FloorPlan.objects.exists() and stored_files(media) == []
        assert not DeviceLocation.objects.exists()

    def test_existing_location_and_new_floorplan(self, operator, organization, device, media):
        location = make_location(organization)
        form = {"location": str(location.pk), "floorplan.floor": "1", "floorplan.image": upload()}
        response = operator.put(url(device), form, format="multipart")
        assert response.status_code == 200, response.content
        plan = FloorPlan.objects.get()
        assert plan.location == location and response.json()["floorplan"]["id"] == str(plan.pk)
        assert Location.objects.count() == 1 and len(stored_files(media)) == 1

    def test_existing_outdoor_location_and_new_floorplan(self, operator, organization, device, media):
        location = make_location(organization, type="outdoor")
        form = {"location": str(location.pk), "floorplan.floor": "1", "floorplan.image": upload()}
        assert "body.floorplan" in fields_of(error_of(operator.put(url(device), form, format="multipart"), 422))
        assert not FloorPlan.objects.exists() and stored_files(media) == []

    def test_bad_nested_geometry(self, operator, device):
        nested = {**NESTED_LOCATION, "geometry": "POINT (12.5"}
        error = error_of(operator.put(url(device), {"location": nested}, format="json"), 422)
        assert "body.location.geometry" in fields_of(error)
        assert not Location.objects.exists()

    def test_bad_nested_image(self, operator, device, media):
        form = multipart_location_and_floorplan(**{"floorplan.image": upload(content=b"not an image")})
        error = error_of(operator.put(url(device), form, format="multipart"), 422)
        assert "body.floorplan.image" in fields_of(error)
        assert not Location.objects.exists() and stored_files(media) == []

    def test_device_id_without_dashes(self, operator, organization, device):
        location = make_location(organization)
        response = operator.put(
            f"/api/v1/controller/device/{device.pk.hex}/location/", {"location": str(location.pk)}, format="json"
        )
        assert response.status_code == 200, response.content


class TestChange:
    def test_nested_fields_change_the_current_location(self, operator, organization, device):
        location = make_location(organization)
        plan = services.create_floorplan(location=location, floor=1, image=upload())
        services.set_device_location(device=device, location=location, floorplan=plan, indoor="1,2")
        response = operator.put(url(device), {"location": {"name": "Renamed"}}, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        assert Location.objects.get().name == "Renamed" and body["location"]["id"] == str(location.pk)
        assert body["floorplan"]["id"] == str(plan.pk) and body["indoor"] == "1,2"  # kept

    def test_indoor_only(self, operator, organization, device):
        location = make_location(organization)
        plan = services.create_floorplan(location=location, floor=1, image=upload())
        services.set_device_location(device=device, location=location, floorplan=plan, indoor="1,2")
        response = operator.put(url(device), {"indoor": " 30 , 40.5 "}, format="json")
        assert response.status_code == 200 and response.json()["indoor"] == "30,40.5"

    def test_nested_outdoor_removes_floorplans(
        self, operator, organization, device, media, django_capture_on_commit_callbacks
    ):
        location = make_location(organization)
        plan = services.create_floorplan(location=location, floor=1, image=upload())
        services.set_device_location(device=device, location=location, floorplan=plan, indoor="1,2")
        with django_capture_on_commit_callbacks(execute=True):
            response = operator.put(url(device), {"location": {"type": "outdoor"}}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["floorplan"] is None and response.json()["indoor"] is None
        assert not FloorPlan.objects.exists() and stored_files(media) == []

    def test_new_floor_on_the_current_location(self, operator, organization, device, media):
        location = make_location(organization)
        first = services.create_floorplan(location=location, floor=1, image=upload())
        services.set_device_location(device=device, location=location, floorplan=first)
        form = {"floorplan.floor": "2", "floorplan.image": upload(), "indoor": "3,4"}
        response = operator.put(url(device), form, format="multipart")
        assert response.status_code == 200, response.content
        second = FloorPlan.objects.get(floor=2)
        assert response.json()["floorplan"]["id"] == str(second.pk) and len(stored_files(media)) == 2

    def test_moving_to_another_location_clears_the_floorplan(self, operator, organization, device):
        location = make_location(organization)
        plan = services.create_floorplan(location=location, floor=1, image=upload())
        services.set_device_location(device=device, location=location, floorplan=plan, indoor="1,2")
        elsewhere = make_location(organization, name="Elsewhere", type="outdoor")
        response = operator.put(url(device), {"location": str(elsewhere.pk)}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["floorplan"] is None and response.json()["indoor"] is None


class TestRules:
    def test_location_of_another_organization(self, operator, client_as, organization, other_organization, device):
        location = make_location(other_organization)
        error = error_of(operator.put(url(device), {"location": str(location.pk)}, format="json"), 422)
        assert "body.location" in fields_of(error)
        # even for a caller who sees both organizations: a device is placed only in its own organization's places
        admin, user = client_as(Role.OPERATOR)
        from netfleet.accounts.factories import MembershipFactory

        MembershipFactory(user=user, organization=other_organization, role=Role.OPERATOR)
        error_of(admin.put(url(device), {"location": str(location.pk)}, format="json"), 422)

    def test_floorplan_of_another_location(self, operator, organization, device):
        location, other = make_location(organization), make_location(organization, name="Other")
        plan = services.create_floorplan(location=other, floor=1, image=upload())
        payload = {"location": str(location.pk), "floorplan": str(plan.pk)}
        error = error_of(operator.put(url(device), payload, format="json"), 422)
        assert "another location" in fields_of(error)["body.floorplan"]

    def test_indoor_needs_a_floorplan(self, operator, organization, device):
        payload = {"location": str(make_location(organization).pk), "indoor": "1,2"}
        assert "body.indoor" in fields_of(error_of(operator.put(url(device), payload, format="json"), 422))

    def test_bad_indoor(self, operator, organization, device):
        location = make_location(organization)
        plan = services.create_floorplan(location=location, floor=1, image=upload())
        payload = {"location": str(location.pk), "floorplan": str(plan.pk), "indoor": "left,top"}
        assert "body.indoor" in fields_of(error_of(operator.put(url(device), payload, format="json"), 422))

    @pytest.mark.parametrize("value", ["not-an-id", 42, ["x"]])
    def test_bad_location_value(self, operator, device, value):
        assert "body.location" in fields_of(
            error_of(operator.put(url(device), {"location": value}, format="json"), 422)
        )

    def test_location_required_the_first_time(self, operator, device):
        assert "body.location" in fields_of(error_of(operator.put(url(device), {}, format="json"), 422))

    def test_conflicting_id_and_fields_in_a_form(self, operator, organization, device):
        form = {"location": str(make_location(organization).pk), "location.name": "x"}
        assert "body.location" in fields_of(error_of(operator.put(url(device), form, format="multipart"), 422))


class TestReadDeleteTenancy:
    def test_get_without_location_is_404(self, viewer, device):
        assert "no location" in error_of(viewer.get(url(device)), 404)["message"]

    def test_delete(self, operator, organization, device):
        location = make_location(organization)
        services.set_device_location(device=device, location=location)
        assert operator.delete(url(device)).status_code == 204
        assert not DeviceLocation.objects.exists() and Location.objects.filter(pk=location.pk).exists()
        error_of(operator.get(url(device)), 404)
        error_of(operator.delete(url(device)), 404)

    def test_other_tenant_device_is_404(self, operator, other_organization):
        device = make_device(other_organization)
        services.set_device_location(device=device, location=make_location(other_organization))
        error_of(operator.get(url(device)), 404)
        error_of(operator.put(url(device), {"location": NESTED_LOCATION}, format="json"), 404)
        error_of(operator.delete(url(device)), 404)
        assert DeviceLocation.objects.filter(device=device).exists()

    def test_unknown_device_is_404(self, operator):
        error_of(operator.get("/api/v1/controller/device/not-a-uuid/location/"), 404)

    def test_viewer_reads_but_cannot_write(self, viewer, organization, device):
        services.set_device_location(device=device, location=make_location(organization))
        assert viewer.get(url(device)).status_code == 200
        error_of(viewer.put(url(device), {"location": NESTED_LOCATION}, format="json"), 403)
        error_of(viewer.delete(url(device)), 403)

    def test_devices_with_location_for_the_with_geo_filter(self, organization, device):
        other = make_device(organization)
        services.set_device_location(device=device, location=make_location(organization))
        located = services.devices_with_location(Device.objects.all(), True)
        assert list(located) == [device]
        assert list(services.devices_with_location(Device.objects.all(), False)) == [other]
