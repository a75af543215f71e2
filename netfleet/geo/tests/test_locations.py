"""Locations over HTTP: every documented request form (JSON, WKT, multipart with a floor plan), the floor plan
rules, and tenancy."""

import uuid

import pytest

from netfleet.accounts.roles import Role
from netfleet.controller.factories import make_device
from netfleet.geo import services
from netfleet.geo.models import DeviceLocation, FloorPlan, Location

from .helpers import POINT, error_of, fields_of, image_bytes, stored_files, upload

pytestmark = pytest.mark.django_db

LOCATIONS = "/api/v1/controller/location/"
LOCATION_FIELDS = {
    "id",
    "organization",
    "name",
    "type",
    "is_mobile",
    "address",
    "geometry",
    "floorplans",
    "created",
    "modified",
}


def make_location(organization, name="HQ", type="indoor", geometry=POINT, **fields):
    return services.create_location(organization=organization, name=name, type=type, geometry=geometry, **fields)


def make_floorplan(location, floor=1):
    return services.create_floorplan(location=location, floor=floor, image=upload())


def spec_form(organization, **overrides):
    """The multipart body of controller-api.txt's "Create Location" curl example."""
    form = {
        "name": "Via del Corso",
        "address": "Via del Corso, Roma, Italia",
        "geometry.type": "Point",
        "geometry.coordinates": "[12.512124, 41.898903]",
        "type": "indoor",
        "is_mobile": "false",
        "floorplan.floor": "1",
        "floorplan.image": upload(),
        "organization": str(organization.pk),
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value is not None}


class TestCreate:
    def test_json_geojson(self, operator, organization):
        payload = {"name": "Via del Corso", "address": "Roma", "type": "outdoor", "geometry": POINT}
        response = operator.post(LOCATIONS, {**payload, "organization": str(organization.pk)}, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert set(body) == LOCATION_FIELDS
        assert body["geometry"] == POINT and body["type"] == "outdoor" and body["is_mobile"] is False
        assert body["organization"] == str(organization.pk) and body["floorplans"] == []
        assert Location.objects.get(pk=body["id"]).geometry == POINT

    def test_json_wkt_returns_geojson(self, operator, organization):
        payload = {
            "name": "Via del Corso",
            "address": "Via del Corso, Roma, Italia",
            "geometry": "POINT (12.512124 41.898903)",
            "type": "outdoor",
            "organization": str(organization.pk),
        }
        response = operator.post(LOCATIONS, payload, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["geometry"] == POINT

    def test_polygon(self, operator, organization):
        square = {"type": "Polygon", "coordinates": [[[12.0, 41.0], [12.1, 41.0], [12.1, 41.1], [12.0, 41.0]]]}
        payload = {"name": "Park", "geometry": square, "organization": str(organization.pk)}
        response = operator.post(LOCATIONS, payload, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["geometry"] == square and response.json()["type"] == "outdoor"

    def test_multipart_with_floorplan(self, operator, organization, media):
        response = operator.post(LOCATIONS, spec_form(organization), format="multipart")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["geometry"] == POINT and body["type"] == "indoor" and body["is_mobile"] is False
        [floorplan] = body["floorplans"]
        assert floorplan["floor"] == 1
        assert floorplan["image"].endswith(f"/api/v1/controller/floorplan/{floorplan['id']}/image/")
        stored = FloorPlan.objects.get(pk=floorplan["id"])
        assert stored.organization == organization and stored.image.name.startswith("floorplans/")
        assert stored_files(media) == [stored.image.name.split("/")[1]]
        image = operator.get(floorplan["image"])
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        assert b"".join(image.streaming_content) == image_bytes()

    def test_multipart_wkt_with_floorplan(self, operator, organization):
        form = spec_form(organization, **{"geometry.type": None, "geometry.coordinates": None})
        form["geometry"] = "POINT (12.512124 41.898903)"
        response = operator.post(LOCATIONS, form, format="multipart")
        assert response.status_code == 201, response.content
        assert response.json()["geometry"] == POINT and len(response.json()["floorplans"]) == 1

    def test_multipart_geometry_location_field_of_the_example(self, operator, organization):
        # the spec's form listing names the coordinates `geometry.location` once
        form = spec_form(organization, **{"geometry.coordinates": None})
        form["geometry.location"] = "[12.512124, 41.898903]"
        response = operator.post(LOCATIONS, form, format="multipart")
        assert response.status_code == 201, response.content
        assert response.json()["geometry"] == POINT

    def test_multipart_without_floorplan(self, operator, organization, media):
        form = spec_form(organization, **{"floorplan.floor": None, "floorplan.image": None})
        response = operator.post(LOCATIONS, form, format="multipart")
        assert response.status_code == 201, response.content
        assert response.json()["floorplans"] == [] and stored_files(media) == []

    def test_mobile_location_needs_no_geometry(self, operator, organization):
        payload = {"name": "Bus 42", "is_mobile": True, "organization": str(organization.pk)}
        response = operator.post(LOCATIONS, payload, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["geometry"] is None and response.json()["is_mobile"] is True

    def test_fixed_location_needs_geometry(self, operator, organization):
        response = operator.post(LOCATIONS, {"name": "HQ", "organization": str(organization.pk)}, format="json")
        assert "body.geometry" in fields_of(error_of(response, 422))


class TestInvalidInput:
    @pytest.mark.parametrize(
        "geometry",
        [
            "POINT (12.5)",
            "not wkt at all",
            "POINT EMPTY",
            {"type": "Point", "coordinates": [200, 41.89]},
            {"type": "Point", "coordinates": [12.5, 95]},
            {"type": "Point", "coordinates": ["a", "b"]},
            {"type": "Point", "coordinates": [[12.5, 41.8]]},
            {"type": "Point"},
            {"type": "Circle", "coordinates": [1, 2]},
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},  # self-intersecting
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]},
            ["12.5", "41.8"],
            42,
        ],
    )
    def test_bad_geometry_is_a_422_and_nothing_is_stored(self, operator, organization, geometry):
        payload = {"name": "HQ", "geometry": geometry, "organization": str(organization.pk)}
        error = error_of(operator.post(LOCATIONS, payload, format="json"), 422)
        assert error["message"] == "Validation error"
        assert "body.geometry" in fields_of(error)
        assert not Location.objects.exists()

    @pytest.mark.parametrize("coordinates", ["[12.5", "twelve", "[500, 1]", ""])
    def test_bad_multipart_coordinates(self, operator, organization, media, coordinates):
        form = spec_form(organization, **{"geometry.coordinates": coordinates})
        error = error_of(operator.post(LOCATIONS, form, format="multipart"), 422)
        assert "body.geometry" in fields_of(error)
        assert not Location.objects.exists() and stored_files(media) == []

    def test_floorplan_for_an_outdoor_location(self, operator, organization, media):
        form = spec_form(organization, type="outdoor")
        error = error_of(operator.post(LOCATIONS, form, format="multipart"), 422)
        assert "indoor" in fields_of(error)["body.floorplan"]
        assert not Location.objects.exists() and not FloorPlan.objects.exists() and stored_files(media) == []

    @pytest.mark.parametrize(
        "image",
        [
            upload("floorplan.png", content=b"this is not an image"),
            upload("floorplan.png", content=image_bytes()[:60]),  # truncated
            upload("floorplan.bmp", fmt="BMP"),  # a real image, in a format floor plans do not take
            upload("floorplan.png", content=b""),
        ],
        ids=["text", "truncated", "bmp", "empty"],
    )
    def test_non_image_upload(self, operator, organization, media, image):
        form = spec_form(organization, **{"floorplan.image": image})
        error = error_of(operator.post(LOCATIONS, form, format="multipart"), 422)
        assert "body.floorplan.image" in fields_of(error)
        assert not Location.objects.exists() and not FloorPlan.objects.exists() and stored_files(media) == []

    def test_oversized_image(self, operator, organization, media, settings):
        settings.NETFLEET_GEO_MAX_IMAGE_BYTES = 2000
        form = spec_form(organization, **{"floorplan.image": upload(noise=True)})
        error = error_of(operator.post(LOCATIONS, form, format="multipart"), 422)
        assert "2000-byte limit" in fields_of(error)["body.floorplan.image"]
        assert not Location.objects.exists() and stored_files(media) == []

    def test_floorplan_needs_floor_and_image(self, operator, organization):
        form = spec_form(organization, **{"floorplan.image": None})
        error = error_of(operator.post(LOCATIONS, form, format="multipart"), 422)
        assert "body.floorplan.image" in fields_of(error)

    def test_bad_type(self, operator, organization):
        payload = {"name": "HQ", "type": "underground", "geometry": POINT, "organization": str(organization.pk)}
        assert "body.type" in fields_of(error_of(operator.post(LOCATIONS, payload, format="json"), 422))


class TestChange:
    def test_put_json(self, operator, organization):
        location = make_location(organization, type="outdoor")
        payload = {"name": "Renamed", "type": "outdoor", "geometry": "POINT (10 45)", "address": "Milano"}
        response = operator.put(f"{LOCATIONS}{location.pk}/", payload, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["name"] == "Renamed" and body["geometry"] == {"type": "Point", "coordinates": [10.0, 45.0]}
        assert body["organization"] == str(organization.pk)

    def test_patch(self, operator, organization):
        location = make_location(organization, type="outdoor")
        response = operator.patch(f"{LOCATIONS}{location.pk}/", {"address": "Roma"}, format="json")
        assert response.status_code == 200 and response.json()["address"] == "Roma"

    def test_put_bad_geometry_keeps_the_stored_one(self, operator, organization):
        location = make_location(organization, type="outdoor")
        payload = {"name": "HQ", "type": "outdoor", "geometry": "POINT (1 2"}
        error_of(operator.put(f"{LOCATIONS}{location.pk}/", payload, format="json"), 422)
        location.refresh_from_db()
        assert location.geometry == POINT

    def test_multipart_put_changes_only_the_first_floorplan(
        self, operator, organization, media, django_capture_on_commit_callbacks
    ):
        location = make_location(organization)
        first, second = make_floorplan(location, floor=1), make_floorplan(location, floor=2)
        old_name = first.image.name
        form = {
            "name": "HQ",
            "type": "indoor",
            "geometry.type": "Point",
            "geometry.coordinates": "[12.512124, 41.898903]",
            "floorplan.floor": "0",
            "floorplan.image": upload("ground.jpg", fmt="JPEG"),
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = operator.put(f"{LOCATIONS}{location.pk}/", form, format="multipart")
        assert response.status_code == 200, response.content
        first.refresh_from_db()
        second_name = second.image.name
        second.refresh_from_db()
        assert first.floor == 0 and first.image.name.endswith(".jpg")
        assert second.floor == 2 and second.image.name == second_name
        assert [plan["floor"] for plan in response.json()["floorplans"]] == [0, 2]
        files = stored_files(media)
        assert old_name.split("/")[1] not in files and len(files) == 2

    def test_switching_to_outdoor_removes_floorplans_and_their_images(
        self, operator, organization, media, django_capture_on_commit_callbacks
    ):
        location = make_location(organization)
        make_floorplan(location, floor=1)
        plan = make_floorplan(location, floor=2)
        device = make_device(organization)
        services.set_device_location(device=device, location=location, floorplan=plan, indoor="10,20")
        assert len(stored_files(media)) == 2
        payload = {"name": "HQ", "type": "outdoor", "geometry": POINT}
        with django_capture_on_commit_callbacks(execute=True):
            response = operator.put(f"{LOCATIONS}{location.pk}/", payload, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["floorplans"] == []
        assert not FloorPlan.objects.exists() and stored_files(media) == []
        placed = DeviceLocation.objects.get(device=device)
        assert placed.location == location and placed.floorplan is None and placed.indoor == ""

    def test_floorplan_with_outdoor_type_on_put(self, operator, organization, media):
        location = make_location(organization, type="outdoor")
        form = {"name": "HQ", "type": "outdoor", "geometry": "POINT (1 2)", "floorplan.floor": "1"}
        form["floorplan.image"] = upload()
        error = error_of(operator.put(f"{LOCATIONS}{location.pk}/", form, format="multipart"), 422)
        assert "body.floorplan" in fields_of(error) and stored_files(media) == []

    def test_organization_cannot_change(self, operator, organization, other_organization):
        location = make_location(organization, type="outdoor")
        payload = {"organization": str(other_organization.pk)}
        response = operator.patch(f"{LOCATIONS}{location.pk}/", payload, format="json")
        assert response.status_code == 200 and response.json()["organization"] == str(organization.pk)

    def test_delete_removes_floorplan_images_and_device_positions(
        self, operator, organization, media, django_capture_on_commit_callbacks
    ):
        location = make_location(organization)
        make_floorplan(location)
        device = make_device(organization)
        services.set_device_location(device=device, location=location)
        with django_capture_on_commit_callbacks(execute=True):
            response = operator.delete(f"{LOCATIONS}{location.pk}/")
        assert response.status_code == 204
        assert not Location.objects.exists() and not DeviceLocation.objects.exists()
        assert stored_files(media) == []


class TestReadAndTenancy:
    def test_list_shape_and_filters(self, client_as, organization, other_organization):
        client, _ = client_as(Role.VIEWER)
        make_location(organization, name="A")
        make_location(organization, name="B", type="outdoor")
        make_location(other_organization, name="C")
        body = client.get(LOCATIONS).json()
        assert set(body) == {"count", "next", "previous", "results"}
        assert [item["name"] for item in body["results"]] == ["A", "B"]
        for query in (
            {"organization": organization.pk},
            {"organization_id": organization.pk},
            {"organization_slug": organization.slug},
        ):
            assert client.get(LOCATIONS, query).json()["count"] == 2
        assert client.get(LOCATIONS, {"organization_slug": other_organization.slug}).json()["count"] == 0
        assert client.get(LOCATIONS, {"type": "outdoor"}).json()["count"] == 1
        assert client.get(LOCATIONS, {"search": "b"}).json()["count"] == 1

    def test_other_tenant_is_404(self, operator, other_organization):
        location = make_location(other_organization)
        for method in ("get", "put", "patch", "delete"):
            error_of(getattr(operator, method)(f"{LOCATIONS}{location.pk}/", {}, format="json"), 404)
        error_of(operator.get(f"{LOCATIONS}{uuid.uuid4()}/"), 404)
        error_of(operator.get(f"{LOCATIONS}{location.pk}/device/"), 404)

    def test_cannot_create_in_another_organization(self, operator, other_organization):
        payload = {"name": "HQ", "geometry": POINT, "organization": str(other_organization.pk)}
        assert "body.organization" in fields_of(error_of(operator.post(LOCATIONS, payload, format="json"), 422))

    def test_viewer_reads_but_cannot_write(self, viewer, organization):
        location = make_location(organization)
        assert viewer.get(f"{LOCATIONS}{location.pk}/").status_code == 200
        payload = {"name": "HQ", "geometry": POINT, "organization": str(organization.pk)}
        error_of(viewer.post(LOCATIONS, payload, format="json"), 403)
        error_of(viewer.delete(f"{LOCATIONS}{location.pk}/"), 403)

    def test_anonymous_is_401(self, api_client):
        error_of(api_client.get(LOCATIONS), 401)

    def test_devices_in_a_location(self, viewer, organization):
        location, elsewhere = make_location(organization), make_location(organization, name="Other")
        plan = make_floorplan(location)
        here = make_device(organization, name="here")
        services.set_device_location(device=here, location=location, floorplan=plan, indoor="5,6")
        services.set_device_location(device=make_device(organization, name="there"), location=elsewhere)
        make_device(organization, name="nowhere")
        body = viewer.get(f"{LOCATIONS}{location.pk}/device/").json()
        assert set(body) == {"count", "next", "previous", "results"}
        [device] = body["results"]
        assert device["id"] == str(here.pk) and device["name"] == "here"
        assert device["floorplan"] == str(plan.pk) and device["indoor"] == "5,6"
        assert "key" not in device

    def test_devices_in_a_location_follow_site_grants(self, client_as, organization):
        from netfleet.accounts.factories import SiteFactory

        site, other_site = SiteFactory(organization=organization), SiteFactory(organization=organization)
        client, _ = client_as(Role.VIEWER, sites=[site])
        location = make_location(organization)
        for name, device_site in (("mine", site), ("theirs", other_site)):
            services.set_device_location(
                device=make_device(organization, name=name, site=device_site), location=location
            )
        body = client.get(f"{LOCATIONS}{location.pk}/device/").json()
        assert [device["name"] for device in body["results"]] == ["mine"]
