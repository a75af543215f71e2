"""Floor plans over HTTP: multipart uploads checked with Pillow, size limits, authenticated image downloads and
image files removed with their floor plan."""

import pytest

from netfleet.accounts.roles import Role
from netfleet.controller.factories import make_device
from netfleet.geo import services
from netfleet.geo.models import DeviceLocation, FloorPlan

from .helpers import POINT, error_of, fields_of, image_bytes, stored_files, upload

pytestmark = pytest.mark.django_db

FLOORPLANS = "/api/v1/controller/floorplan/"
FLOORPLAN_FIELDS = {"id", "organization", "location", "floor", "image", "created", "modified"}


def make_location(organization, name="HQ", type="indoor"):
    return services.create_location(organization=organization, name=name, type=type, geometry=POINT)


class TestCreate:
    @pytest.mark.parametrize(
        ("fmt", "extension", "content_type"),
        [("PNG", "png", "image/png"), ("JPEG", "jpg", "image/jpeg"), ("GIF", "gif", "image/gif")]
        + [("WEBP", "webp", "image/webp")],
    )
    def test_upload_and_download(self, operator, organization, media, fmt, extension, content_type):
        location = make_location(organization)
        form = {"location": str(location.pk), "floor": "2", "image": upload("plan.bin", fmt=fmt)}
        response = operator.post(FLOORPLANS, form, format="multipart")
        assert response.status_code == 201, response.content
        body = response.json()
        assert set(body) == FLOORPLAN_FIELDS
        assert (
            body["floor"] == 2 and body["location"] == str(location.pk) and body["organization"] == str(organization.pk)
        )
        assert "/media/" not in body["image"] and body["image"].endswith(f"{FLOORPLANS}{body['id']}/image/")
        stored = FloorPlan.objects.get(pk=body["id"])
        assert stored.image.name.endswith(f".{extension}")  # named after the real format, not the client's name
        assert stored_files(media) == [stored.image.name.split("/")[1]]
        download = operator.get(body["image"])
        assert download.status_code == 200 and download["Content-Type"] == content_type
        assert b"".join(download.streaming_content) == image_bytes(fmt)

    def test_download_accepting_only_images(self, operator, organization):
        plan = services.create_floorplan(location=make_location(organization), floor=1, image=upload())
        response = operator.get(f"{FLOORPLANS}{plan.pk}/image/", HTTP_ACCEPT="image/png")
        assert response.status_code == 200 and response["Content-Type"] == "image/png"

    def test_for_an_outdoor_location(self, operator, organization, media):
        location = make_location(organization, type="outdoor")
        form = {"location": str(location.pk), "floor": "1", "image": upload()}
        error = error_of(operator.post(FLOORPLANS, form, format="multipart"), 422)
        assert "indoor" in fields_of(error)["body.location"]
        assert not FloorPlan.objects.exists() and stored_files(media) == []

    @pytest.mark.parametrize(
        "image",
        [
            upload("plan.png", content=b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            upload("plan.png", content=image_bytes("JPEG")[:100]),
            upload("plan.tiff", fmt="TIFF"),
        ],
        ids=["svg", "truncated-jpeg", "tiff"],
    )
    def test_non_image(self, operator, organization, media, image):
        form = {"location": str(make_location(organization).pk), "floor": "1", "image": image}
        error = error_of(operator.post(FLOORPLANS, form, format="multipart"), 422)
        assert "body.image" in fields_of(error)
        assert not FloorPlan.objects.exists() and stored_files(media) == []

    def test_oversized_image_is_a_422(self, operator, organization, media, settings):
        settings.NETFLEET_GEO_MAX_IMAGE_BYTES = 5000
        image = upload(noise=True, size=(60, 60))
        form = {"location": str(make_location(organization).pk), "floor": "1", "image": image}
        error = error_of(operator.post(FLOORPLANS, form, format="multipart"), 422)
        assert fields_of(error)["body.image"] == "The image is larger than the 5000-byte limit."
        assert not FloorPlan.objects.exists() and stored_files(media) == []

    def test_too_many_pixels(self, operator, organization, media, settings):
        settings.NETFLEET_GEO_MAX_IMAGE_PIXELS = 100
        form = {"location": str(make_location(organization).pk), "floor": "1", "image": upload()}
        error = error_of(operator.post(FLOORPLANS, form, format="multipart"), 422)
        assert "pixels" in fields_of(error)["body.image"] and stored_files(media) == []

    def test_body_over_the_upload_limit_is_a_413_unread(self, operator, organization, settings):
        settings.NETFLEET_GEO_MAX_IMAGE_BYTES = 2 * 1024 * 1024
        response = operator.generic(
            "POST",
            FLOORPLANS,
            b"x",
            content_type="multipart/form-data; boundary=x",
            CONTENT_LENGTH=str(3 * 1024 * 1024),
        )
        assert response.status_code == 413
        assert response.json() == {"detail": f"request body exceeds {2 * 1024 * 1024 + 64 * 1024}-byte limit"}

    def test_upload_larger_than_the_default_body_limit(self, operator, organization, media):
        image = upload(noise=True, size=(700, 700))  # ~1.5 MB: over the 1 MiB default, within the upload limit
        assert image.size > 1024 * 1024
        form = {"location": str(make_location(organization).pk), "floor": "1", "image": image}
        response = operator.post(FLOORPLANS, form, format="multipart")
        assert response.status_code == 201, response.content
        assert len(stored_files(media)) == 1

    def test_same_floor_twice_is_a_conflict(self, operator, organization, media):
        location = make_location(organization)
        services.create_floorplan(location=location, floor=1, image=upload())
        form = {"location": str(location.pk), "floor": "1", "image": upload()}
        error_of(operator.post(FLOORPLANS, form, format="multipart"), 409)
        assert FloorPlan.objects.count() == 1 and len(stored_files(media)) == 1

    def test_location_of_another_tenant(self, operator, other_organization, media):
        form = {"location": str(make_location(other_organization).pk), "floor": "1", "image": upload()}
        assert "body.location" in fields_of(error_of(operator.post(FLOORPLANS, form, format="multipart"), 422))
        assert stored_files(media) == []


class TestChangeAndDelete:
    def test_put_replaces_the_image_and_deletes_the_old_file(
        self, operator, organization, media, django_capture_on_commit_callbacks
    ):
        plan = services.create_floorplan(location=make_location(organization), floor=1, image=upload())
        old = plan.image.name.split("/")[1]
        with django_capture_on_commit_callbacks(execute=True):
            response = operator.put(
                f"{FLOORPLANS}{plan.pk}/", {"floor": "3", "image": upload(fmt="GIF")}, format="multipart"
            )
        assert response.status_code == 200, response.content
        plan.refresh_from_db()
        assert plan.floor == 3 and plan.image.name.endswith(".gif")
        assert stored_files(media) == [plan.image.name.split("/")[1]] and old not in stored_files(media)

    def test_put_without_image_keeps_it(self, operator, organization, media):
        plan = services.create_floorplan(location=make_location(organization), floor=1, image=upload())
        name = plan.image.name
        response = operator.put(f"{FLOORPLANS}{plan.pk}/", {"floor": "4"}, format="json")
        assert response.status_code == 200, response.content
        plan.refresh_from_db()
        assert plan.floor == 4 and plan.image.name == name and len(stored_files(media)) == 1

    def test_put_bad_image_keeps_the_old_one(self, operator, organization, media):
        plan = services.create_floorplan(location=make_location(organization), floor=1, image=upload())
        name = plan.image.name
        form = {"floor": "1", "image": upload(content=b"GIF89a nope")}
        error_of(operator.put(f"{FLOORPLANS}{plan.pk}/", form, format="multipart"), 422)
        plan.refresh_from_db()
        assert plan.image.name == name and stored_files(media) == [name.split("/")[1]]

    def test_delete_removes_the_file_and_unplaces_devices(
        self, operator, organization, media, django_capture_on_commit_callbacks
    ):
        location = make_location(organization)
        plan = services.create_floorplan(location=location, floor=1, image=upload())
        device = make_device(organization)
        services.set_device_location(device=device, location=location, floorplan=plan, indoor="1,2")
        with django_capture_on_commit_callbacks(execute=True):
            response = operator.delete(f"{FLOORPLANS}{plan.pk}/")
        assert response.status_code == 204
        assert not FloorPlan.objects.exists() and stored_files(media) == []
        placed = DeviceLocation.objects.get(device=device)
        assert placed.location == location and placed.floorplan is None and placed.indoor == ""

    def test_file_stays_until_commit(self, operator, organization, media):
        # without a commit (the test's transaction), the file is kept: a rollback must not lose it
        plan = services.create_floorplan(location=make_location(organization), floor=1, image=upload())
        assert operator.delete(f"{FLOORPLANS}{plan.pk}/").status_code == 204
        assert len(stored_files(media)) == 1


class TestReadAndTenancy:
    def test_list_and_filters(self, client_as, organization, other_organization):
        viewer, _ = client_as(Role.VIEWER)
        hq, lab = make_location(organization), make_location(organization, name="Lab")
        for location, floor in ((hq, 1), (hq, 2), (lab, 1)):
            services.create_floorplan(location=location, floor=floor, image=upload())
        services.create_floorplan(location=make_location(other_organization), floor=1, image=upload())
        body = viewer.get(FLOORPLANS).json()
        assert set(body) == {"count", "next", "previous", "results"} and body["count"] == 3
        for query in (
            {"organization": organization.pk},
            {"organization_id": organization.pk},
            {"organization_slug": organization.slug},
        ):
            assert viewer.get(FLOORPLANS, query).json()["count"] == 3
        assert viewer.get(FLOORPLANS, {"organization_slug": other_organization.slug}).json()["count"] == 0
        assert viewer.get(FLOORPLANS, {"location": hq.pk}).json()["count"] == 2
        assert viewer.get(FLOORPLANS, {"floor": 2}).json()["count"] == 1

    def test_image_is_served_to_authorised_users_only(self, client_as, api_client, organization, other_organization):
        plan = services.create_floorplan(location=make_location(organization), floor=1, image=upload())
        url = f"{FLOORPLANS}{plan.pk}/image/"
        error_of(api_client.get(url), 401)
        outsider, _ = client_as(Role.ORG_ADMIN, org=other_organization)
        error_of(outsider.get(url), 404)
        error_of(outsider.get(f"{FLOORPLANS}{plan.pk}/"), 404)
        viewer, _ = client_as(Role.VIEWER)
        assert viewer.get(url).status_code == 200

    def test_missing_file_is_a_404(self, operator, organization, media):
        plan = services.create_floorplan(location=make_location(organization), floor=1, image=upload())
        (media / plan.image.name).unlink()
        assert "missing" in error_of(operator.get(f"{FLOORPLANS}{plan.pk}/image/"), 404)["message"]

    def test_viewer_cannot_upload(self, viewer, organization, media):
        form = {"location": str(make_location(organization).pk), "floor": "1", "image": upload()}
        error_of(viewer.post(FLOORPLANS, form, format="multipart"), 403)
        assert stored_files(media) == []
