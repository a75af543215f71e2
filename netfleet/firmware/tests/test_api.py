"""The firmware-api.txt surface over HTTP: every endpoint and filter, permissions, tenancy and validation.

These tests never commit (pytest-django rolls back), so upgrades they start are recorded but never queued; the
upgrader itself is tested against a real sshd in test_upgrade.py and test_worker.py."""

import hashlib
import os
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from netfleet.accounts.roles import Role
from netfleet.controller.factories import DeviceGroupFactory, make_device
from netfleet.controller.models import Device
from netfleet.firmware import services
from netfleet.firmware.choices import BatchStatus, UpgradeStatus
from netfleet.firmware.factories import ARCHER_C7_V5, ARCHER_C7_V5_MODEL, BuildFactory, CategoryFactory, make_image
from netfleet.firmware.models import BatchUpgradeOperation, DeviceFirmware, FirmwareImage, UpgradeOperation
from netfleet.geo.models import DeviceLocation, Location

from .helpers import BATCHES, BUILDS, CATEGORIES, OPERATIONS, device_url, error_of, fields_of, ids, images_url, url

pytestmark = pytest.mark.django_db

GL_MT300N = "ramips-mt76x8-glinet_gl-mt300n-v2-squashfs-sysupgrade.bin"
RPI4 = "bcm27xx-bcm2711-rpi-4-ext4-sysupgrade.img.gz"


@pytest.fixture
def build(organization):
    return BuildFactory(category=CategoryFactory(organization=organization, name="outdoor"), version="23.05.3")


def upload(client, build, content=b"OpenWrt 23.05.3\n" + b"x" * 5000, type=ARCHER_C7_V5, name="fw.bin"):  # noqa: A002
    return client.post(images_url(build), {"type": type, "file": SimpleUploadedFile(name, content)}, format="multipart")


# --- categories ---------------------------------------------------------------------------------------------------


class TestCategories:
    def test_crud_and_list_shape(self, writer, organization):
        response = writer.post(CATEGORIES, {"name": "outdoor", "organization": str(organization.pk)})
        assert response.status_code == 201, response.content
        pk = response.json()["id"]
        assert response.json()["organization"] == str(organization.pk)
        assert ids(writer.get(CATEGORIES)) == [pk]
        response = writer.patch(url(CATEGORIES, pk), {"description": "APs on poles"})
        assert response.json()["description"] == "APs on poles"
        response = writer.put(url(CATEGORIES, pk), {"name": "outdoor-aps", "description": ""})
        assert response.status_code == 200 and response.json()["name"] == "outdoor-aps"
        assert writer.delete(url(CATEGORIES, pk)).status_code == 204
        assert ids(writer.get(CATEGORIES)) == []

    def test_shared_categories_readable_by_all_writable_by_superusers(self, writer, admin_client, organization):
        shared = CategoryFactory(organization=None, name="shared")
        own = CategoryFactory(organization=organization, name="own")
        assert set(ids(writer.get(CATEGORIES))) == {str(shared.pk), str(own.pk)}
        error_of(writer.patch(url(CATEGORIES, shared.pk), {"description": "x"}), 403)
        error_of(writer.post(CATEGORIES, {"name": "new shared", "organization": None}), 403)
        assert admin_client.post(CATEGORIES, {"name": "new shared", "organization": None}).status_code == 201

    def test_organization_filter_by_slug_or_id(self, admin_client, organization, other_organization):
        own = CategoryFactory(organization=organization)
        CategoryFactory(organization=other_organization)
        assert ids(admin_client.get(CATEGORIES, {"organization": organization.slug})) == [str(own.pk)]
        assert ids(admin_client.get(CATEGORIES, {"organization": str(organization.pk)})) == [str(own.pk)]
        assert ids(admin_client.get(CATEGORIES, {"organization": "no-such-org"})) == []

    def test_other_tenant_is_404(self, writer, other_organization):
        theirs = CategoryFactory(organization=other_organization)
        assert str(theirs.pk) not in ids(writer.get(CATEGORIES))
        for response in (
            writer.get(url(CATEGORIES, theirs.pk)),
            writer.patch(url(CATEGORIES, theirs.pk), {"name": "x"}),
            writer.delete(url(CATEGORIES, theirs.pk)),
        ):
            error_of(response, 404)
        error = error_of(writer.post(CATEGORIES, {"name": "x", "organization": str(other_organization.pk)}), 422)
        assert "body.organization" in fields_of(error)

    def test_viewer_reads_but_cannot_write(self, viewer, organization):
        category = CategoryFactory(organization=organization)
        assert ids(viewer.get(CATEGORIES)) == [str(category.pk)]
        error = error_of(viewer.post(CATEGORIES, {"name": "x", "organization": str(organization.pk)}), 403)
        assert "firmware:write" in error["message"]

    def test_validation_is_422_and_duplicates_409(self, writer, organization):
        error = error_of(writer.post(CATEGORIES, {"organization": str(organization.pk)}), 422)
        assert "body.name" in fields_of(error)
        CategoryFactory(organization=organization, name="dup")
        error_of(writer.post(CATEGORIES, {"name": "dup", "organization": str(organization.pk)}), 409)


# --- builds -------------------------------------------------------------------------------------------------------


class TestBuilds:
    def test_crud(self, writer, organization):
        category = CategoryFactory(organization=organization)
        payload = {"category": str(category.pk), "version": "23.05.3", "os": "OpenWrt 23.05.3 r23809", "changelog": "-"}
        response = writer.post(BUILDS, payload)
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["category_relation"] == {"id": str(category.pk), "name": category.name,
                                             "organization": str(organization.pk)}  # fmt: skip
        assert writer.patch(url(BUILDS, body["id"]), {"changelog": "fixes"}).json()["changelog"] == "fixes"
        assert writer.get(url(BUILDS, body["id"])).json()["os"] == "OpenWrt 23.05.3 r23809"
        error_of(writer.post(BUILDS, payload), 409)  # same version in the category
        assert writer.delete(url(BUILDS, body["id"])).status_code == 204

    def test_filters(self, writer, organization, other_organization, admin_client):
        first, second = CategoryFactory(organization=organization), CategoryFactory(organization=organization)
        a = BuildFactory(category=first, version="1.0", os="OpenWrt 1.0")
        b = BuildFactory(category=second, version="2.0", os="OpenWrt 2.0")
        theirs = BuildFactory(category=CategoryFactory(organization=other_organization), version="1.0")
        assert set(ids(writer.get(BUILDS))) == {str(a.pk), str(b.pk)}
        assert ids(writer.get(BUILDS, {"category": str(first.pk)})) == [str(a.pk)]
        assert ids(writer.get(BUILDS, {"version": "2.0"})) == [str(b.pk)]
        assert ids(writer.get(BUILDS, {"os": "OpenWrt 1.0"})) == [str(a.pk)]
        assert ids(admin_client.get(BUILDS, {"organization": other_organization.slug})) == [str(theirs.pk)]
        assert fields_of(error_of(writer.get(BUILDS, {"category": "nope"}), 422)) == {
            "query.category": "Enter a valid UUID."
        }
        page = writer.get(BUILDS, {"page_size": 1}).json()
        assert page["count"] == 2 and len(page["results"]) == 1 and page["next"]

    def test_other_tenant_and_shared_categories(self, writer, organization, other_organization, admin_client):
        theirs = BuildFactory(category=CategoryFactory(organization=other_organization))
        error_of(writer.get(url(BUILDS, theirs.pk)), 404)
        error_of(writer.delete(url(BUILDS, theirs.pk)), 404)
        error = error_of(writer.post(BUILDS, {"category": str(theirs.category_id), "version": "9"}), 422)
        assert "body.category" in fields_of(error)
        shared = CategoryFactory(organization=None)
        error_of(writer.post(BUILDS, {"category": str(shared.pk), "version": "9"}), 403)
        assert admin_client.post(BUILDS, {"category": str(shared.pk), "version": "9"}).status_code == 201
        shared_build = BuildFactory(category=shared)
        assert writer.get(url(BUILDS, shared_build.pk)).status_code == 200
        error_of(writer.patch(url(BUILDS, shared_build.pk), {"changelog": "x"}), 403)


# --- images -------------------------------------------------------------------------------------------------------


class TestImages:
    def test_upload_records_and_returns_sha256(self, writer, build):
        content = b"OpenWrt 23.05.3\n" + bytes(range(256)) * 40
        response = upload(writer, build, content)
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["sha256"] == hashlib.sha256(content).hexdigest() and body["size"] == len(content)
        assert body["type"] == ARCHER_C7_V5 and body["boards"] == [ARCHER_C7_V5_MODEL]
        assert body["build"] == str(build.pk)
        assert body["file"].endswith(f"/api/v1/firmware-upgrader/build/{build.pk}/image/{body['id']}/download/")
        image = FirmwareImage.objects.get(pk=body["id"])
        assert image.file.name.startswith(f"firmware/{build.pk}/") and image.file.read() == content

    def test_download_is_streamed_to_readers_only(self, writer, viewer, build, api_client, client_as,
                                                  other_organization):  # fmt: skip
        image = make_image(build)
        download = url(images_url(build, image.pk), "download")
        response = viewer.get(download, HTTP_ACCEPT="application/octet-stream")
        assert response.status_code == 200 and response.streaming
        assert b"".join(response.streaming_content) == image.file.open("rb").read()
        assert response["Content-Type"] == "application/octet-stream"
        assert response["X-Checksum-SHA256"] == image.sha256
        assert response["Content-Disposition"] == 'attachment; filename="openwrt-sysupgrade.bin"'
        error_of(api_client.get(download), 401)
        stranger = client_as(Role.ORG_ADMIN, org=other_organization)[0]
        error_of(stranger.get(download, HTTP_ACCEPT="application/octet-stream"), 404)

    def test_list_filter_detail_delete(self, writer, build, django_capture_on_commit_callbacks):
        archer = make_image(build)
        gl = make_image(build, type=GL_MT300N)
        assert set(ids(writer.get(images_url(build)))) == {str(archer.pk), str(gl.pk)}
        assert ids(writer.get(images_url(build), {"type": GL_MT300N})) == [str(gl.pk)]
        assert writer.get(images_url(build, archer.pk)).json()["sha256"] == archer.sha256
        path = gl.file.path
        with django_capture_on_commit_callbacks(execute=True):
            assert writer.delete(images_url(build, gl.pk)).status_code == 204
        assert not FirmwareImage.objects.filter(pk=gl.pk).exists()
        assert not os.path.exists(path)

    def test_bad_uploads(self, writer, build):
        error = error_of(upload(writer, build, type="no-such-board-sysupgrade.bin"), 422)
        assert "body.type" in fields_of(error)
        assert "empty" in fields_of(error_of(upload(writer, build, content=b""), 422))["body.file"]
        error = error_of(upload(writer, build, content=b"not gzip", type=RPI4), 422)
        assert "gzip" in fields_of(error)["body.file"]
        error = error_of(writer.post(images_url(build), {"type": ARCHER_C7_V5}, format="json"), 422)
        assert "body.file" in fields_of(error)
        assert upload(writer, build).status_code == 201
        error_of(upload(writer, build), 409)  # one image per type
        assert FirmwareImage.objects.count() == 1

    def test_size_limit_declared_by_the_upload_view(self, writer, build):
        with override_settings(NETFLEET_FIRMWARE_MAX_IMAGE_BYTES=1000, NETFLEET_MAX_BODY_SIZE=1000):
            response = upload(writer, build, content=b"x" * 200_000)
            assert response.status_code == 413
            assert "limit" in response.json()["detail"]
            error = error_of(upload(writer, build, content=b"x" * 5000), 422)  # within the body, over the image
            assert "larger" in fields_of(error)["body.file"]
        # without a declared limit a body this size is refused on other endpoints
        with override_settings(NETFLEET_MAX_BODY_SIZE=1000):
            big = {"name": "x" * 200_000}
            assert writer.post(CATEGORIES, big).status_code == 413

    def test_permissions_and_tenancy(self, viewer, writer, build, other_organization, admin_client):
        error_of(upload(viewer, build), 403)
        theirs = BuildFactory(category=CategoryFactory(organization=other_organization))
        error_of(writer.get(images_url(theirs)), 404)
        error_of(upload(writer, theirs), 404)
        error_of(writer.get(images_url(uuid.uuid4())), 404)
        error_of(writer.get(images_url("not-a-uuid")), 404)
        shared = BuildFactory(category=CategoryFactory(organization=None))
        error_of(upload(writer, shared), 403)
        assert upload(admin_client, shared).status_code == 201
        assert len(ids(writer.get(images_url(shared)))) == 1  # shared images are readable by every organization

    def test_image_being_flashed_cannot_be_deleted(self, writer, build, connected_device):
        image = make_image(build)
        services.start_upgrade(device=connected_device(), image=image)
        error_of(writer.delete(images_url(build, image.pk)), 409)


# --- device firmware and single upgrades ------------------------------------------------------------------------


class TestDeviceFirmware:
    def test_put_creates_and_starts_an_upgrade(self, writer, build, connected_device, make_user, organization):
        device = connected_device()
        image = make_image(build)
        error_of(writer.get(device_url(device, "firmware")), 404)
        response = writer.put(
            device_url(device, "firmware"), {"image": str(image.pk), "upgrade_options": {"keep_config": False}}
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["image"] == str(image.pk) and body["installed"] is False and body["device"] == str(device.pk)
        operation = UpgradeOperation.objects.get(device=device)
        assert body["upgrade_operation"]["id"] == str(operation.pk)
        assert body["upgrade_operation"]["status"] == UpgradeStatus.IN_PROGRESS
        assert operation.upgrade_options == {"keep_config": False, "force": False}
        assert operation.image == image and operation.connection is not None and operation.deadline
        assert writer.get(device_url(device, "firmware")).json()["id"] == body["id"]

        # the same image again: nothing new
        again = writer.put(device_url(device, "firmware"), {"image": str(image.pk)})
        assert again.status_code == 200 and UpgradeOperation.objects.filter(device=device).count() == 1
        # another image while the first upgrade runs: 409, nothing changed
        newer = make_image(BuildFactory(category=build.category, version="23.05.4"))
        error_of(writer.put(device_url(device, "firmware"), {"image": str(newer.pk)}), 409)
        assert DeviceFirmware.objects.get(device=device).image == image
        UpgradeOperation.objects.filter(device=device).update(status=UpgradeStatus.SUCCESS)
        response = writer.patch(device_url(device, "firmware"), {"image": str(newer.pk)})
        assert response.status_code == 200 and response.json()["image"] == str(newer.pk)
        assert UpgradeOperation.objects.filter(device=device, image=newer, status="in-progress").count() == 1

    def test_refusals(self, writer, build, connected_device, organization, other_organization):
        image = make_image(build)
        wrong_model = connected_device(model="GL-MT300N-V2")
        error = error_of(writer.put(device_url(wrong_model, "firmware"), {"image": str(image.pk)}), 422)
        assert "does not fit the device model 'GL-MT300N-V2'" in fields_of(error)["body.image"]
        unknown_model = connected_device(model="")
        error = error_of(writer.put(device_url(unknown_model, "firmware"), {"image": str(image.pk)}), 422)
        assert "model is unknown" in fields_of(error)["body.image"]
        unreachable = make_device(organization, model=ARCHER_C7_V5_MODEL)
        error = error_of(writer.put(device_url(unreachable, "firmware"), {"image": str(image.pk)}), 409)
        assert "connection" in error["message"]
        assert not DeviceFirmware.objects.filter(device=unreachable).exists()  # nothing saved
        error = error_of(writer.put(device_url(connected_device(), "firmware"), {"upgrade_options": {"x": 1}}), 422)
        assert set(fields_of(error)) == {"body.image", "body.upgrade_options.x"}
        theirs_image = make_image(BuildFactory(category=CategoryFactory(organization=other_organization)))
        error = error_of(writer.put(device_url(connected_device(), "firmware"), {"image": str(theirs_image.pk)}), 422)
        assert "body.image" in fields_of(error)
        deactivated = connected_device(is_deactivated=True)
        error_of(writer.put(device_url(deactivated, "firmware"), {"image": str(image.pk)}), 409)

    def test_tenancy_and_permissions(self, writer, viewer, build, connected_device, other_organization):
        theirs = connected_device(org=other_organization)
        for response in (
            writer.get(device_url(theirs, "firmware")),
            writer.put(device_url(theirs, "firmware"), {"image": str(make_image(build).pk)}),
            writer.get(device_url(theirs, "upgrade-operation")),
        ):
            error_of(response, 404)
        device = connected_device()
        error_of(viewer.put(device_url(device, "firmware"), {"image": str(build.images.get().pk)}), 403)
        error_of(writer.patch(device_url(device, "firmware"), {"image": str(build.images.get().pk)}), 404)

    def test_delete(self, writer, build, connected_device):
        device = connected_device()
        DeviceFirmware.objects.create(device=device, image=make_image(build), installed=True)
        assert writer.delete(device_url(device, "firmware")).status_code == 204
        error_of(writer.delete(device_url(device, "firmware")), 404)


class TestUpgradeOperations:
    @pytest.fixture
    def operations(self, build, connected_device, organization, other_organization):
        image = make_image(build)
        first, second = connected_device(), connected_device()
        done = services.start_upgrade(device=first, image=image)
        UpgradeOperation.objects.filter(pk=done.pk).update(status=UpgradeStatus.FAILED)
        running = services.start_upgrade(device=second, image=image)
        other_build = BuildFactory(category=CategoryFactory(organization=other_organization))
        theirs = services.start_upgrade(device=connected_device(org=other_organization), image=make_image(other_build))
        return {"failed": done, "running": running, "theirs": theirs, "image": image, "devices": (first, second)}

    def test_list_detail_and_filters(self, writer, admin_client, operations, organization, other_organization):
        failed, running, theirs = operations["failed"], operations["running"], operations["theirs"]
        assert ids(writer.get(OPERATIONS)) == [str(running.pk), str(failed.pk)]  # newest first, own tenant only
        assert ids(writer.get(OPERATIONS, {"status": "failed"})) == [str(failed.pk)]
        assert ids(writer.get(OPERATIONS, {"device": str(running.device_id)})) == [str(running.pk)]
        assert ids(writer.get(OPERATIONS, {"image": str(operations["image"].pk)})) == [str(running.pk), str(failed.pk)]
        for name, value in (
            ("device__organization", str(other_organization.pk)),
            ("device__organization_slug", other_organization.slug),
            ("device__organization__slug", other_organization.slug),
            ("organization", other_organization.slug),
        ):
            assert ids(admin_client.get(OPERATIONS, {name: value})) == [str(theirs.pk)], name
            assert ids(writer.get(OPERATIONS, {name: value})) == [], name
        error = error_of(writer.get(OPERATIONS, {"status": "exploded"}), 422)
        assert "query.status" in fields_of(error)
        body = writer.get(url(OPERATIONS, running.pk)).json()
        assert body["status"] == "in-progress" and body["step"] == "queued" and body["progress"] == 0
        assert body["log"].startswith("Queued: upgrade to") and body["upgrade_options"] == {
            "keep_config": True,
            "force": False,
        }
        assert writer.get(f"{OPERATIONS}{running.pk}").status_code == 200  # the spec's path has no slash
        error_of(writer.get(url(OPERATIONS, theirs.pk)), 404)
        error_of(writer.post(url(OPERATIONS, theirs.pk, "cancel")), 404)

    def test_device_upgrade_operations(self, writer, operations):
        device = operations["devices"][0]
        assert ids(writer.get(device_url(device, "upgrade-operation"))) == [str(operations["failed"].pk)]
        assert ids(writer.get(device_url(device, "upgrade-operation"), {"status": "success"})) == []
        assert ids(writer.get(device_url(device, "upgrade-operation"), {"status": "failed"})) == [
            str(operations["failed"].pk)
        ]
        error_of(writer.get(f"/api/v1/firmware-upgrader/device/{uuid.uuid4()}/upgrade-operation/"), 404)

    def test_cancel_before_flashing_only(self, writer, viewer, operations):
        running = operations["running"]
        error_of(viewer.post(url(OPERATIONS, running.pk, "cancel")), 403)
        response = writer.post(url(OPERATIONS, running.pk, "cancel"))
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        assert response.json()["log"].endswith("Cancelled by the operator\n") and response.json()["finished"]
        error = error_of(writer.post(url(OPERATIONS, running.pk, "cancel")), 409)
        assert "already cancelled" in error["message"]
        # one that started flashing can no longer be stopped
        retried = writer.post(url(OPERATIONS, running.pk, "retry")).json()
        UpgradeOperation.objects.filter(pk=retried["id"]).update(flashing_started=timezone.now())
        error = error_of(writer.post(url(OPERATIONS, retried["id"], "cancel")), 409)
        assert "flashing" in error["message"]

    def test_retry(self, writer, operations):
        failed = operations["failed"]
        response = writer.post(url(OPERATIONS, failed.pk, "retry"))
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["retry_of"] == str(failed.pk) and body["status"] == "in-progress" and body["id"] != str(failed.pk)
        assert body["device"] == str(failed.device_id) and body["image"] == str(failed.image_id)
        error_of(writer.post(url(OPERATIONS, body["id"], "retry")), 409)  # in progress: nothing to retry


# --- mass upgrades ------------------------------------------------------------------------------------------------


class TestMassUpgrade:
    @pytest.fixture
    def fleet(self, build, connected_device, organization, other_organization):
        """Devices of the build's organization in every situation the selection distinguishes."""
        archer = make_image(build)
        gl = make_image(build, type=GL_MT300N)
        older = BuildFactory(category=build.category, version="22.03.0")
        old_archer = make_image(older)
        other_category = BuildFactory(category=CategoryFactory(organization=organization), version="1.0")
        group = DeviceGroupFactory(organization=organization)
        fleet = {
            "archer": archer,
            "gl": gl,
            "group": group,
            # DeviceFirmware on an older build of the category: upgraded (to the image of the same type)
            "older": connected_device(name="a-older", group=group),
            # no DeviceFirmware, model fits: upgraded with upgrade_all
            "fresh": connected_device(name="b-fresh", model="GL-MT300N-V2"),
            # already installed with this build, other category, unknown model, other organization: never
            "current": connected_device(name="c-current"),
            "elsewhere": connected_device(name="d-elsewhere"),
            "unknown": connected_device(name="e-unknown", model="Some Other Router"),
            "theirs": connected_device(name="f-theirs", org=other_organization),
            # no working connection: selected, but its operation is aborted
            "offline": make_device(organization, name="g-offline", model=ARCHER_C7_V5_MODEL),
        }
        fleet["older_fw"] = DeviceFirmware.objects.create(device=fleet["older"], image=old_archer, installed=True)
        DeviceFirmware.objects.create(device=fleet["current"], image=archer, installed=True)
        DeviceFirmware.objects.create(device=fleet["elsewhere"], image=make_image(other_category), installed=True)
        return fleet

    def test_dry_run_and_real_run_select_the_same_devices(self, writer, build, fleet):
        upgrade = url(BUILDS, build.pk, "upgrade")
        dry = writer.get(upgrade)
        assert dry.status_code == 200, dry.content
        assert dry.json() == {
            "device_firmwares": [str(fleet["older_fw"].pk)],
            "devices": [str(fleet["fresh"].pk), str(fleet["offline"].pk)],
        }
        assert writer.get(upgrade, {"upgrade_all": "false"}).json() == {
            "device_firmwares": [str(fleet["older_fw"].pk)],
            "devices": [],
        }
        assert writer.get(upgrade, {"group": str(fleet["group"].pk)}).json()["devices"] == []

        response = writer.post(upgrade, {"upgrade_options": {"keep_config": False}})
        assert response.status_code == 201, response.content
        body = response.json()
        batch = BatchUpgradeOperation.objects.get(pk=body["batch"])
        assert body["id"] == body["batch"] and body["build"]["id"] == str(build.pk)
        operations = {op.device_id: op for op in batch.operations.all()}
        assert set(operations) == {fleet["older"].pk, fleet["fresh"].pk, fleet["offline"].pk}
        assert operations[fleet["older"].pk].image == fleet["archer"]  # same type as its current image
        assert operations[fleet["fresh"].pk].image == fleet["gl"]  # the one image that fits its model
        assert operations[fleet["offline"].pk].status == UpgradeStatus.ABORTED
        assert "connection" in operations[fleet["offline"].pk].log
        assert all(op.upgrade_options == {"keep_config": False, "force": False} for op in operations.values())
        assert body["status"] == BatchStatus.IN_PROGRESS
        assert (body["operations_count"], body["in_progress_count"], body["aborted_count"]) == (3, 2, 1)
        assert body["progress_report"] == "1 out of 3" and body["aborted_rate"] == 33 and body["success_rate"] == 0
        assert len(body["upgrade_operations"]) == 3

    def test_location_and_group_filters(self, writer, build, fleet, organization):
        location = Location.objects.create(organization=organization, name="roof", is_mobile=True)
        DeviceLocation.objects.create(device=fleet["fresh"], location=location)
        upgrade = url(BUILDS, build.pk, "upgrade")
        assert writer.get(upgrade, {"location": str(location.pk)}).json() == {
            "device_firmwares": [],
            "devices": [str(fleet["fresh"].pk)],
        }
        response = writer.post(upgrade, {"location": str(location.pk)})
        assert response.status_code == 201
        assert [op["device"] for op in response.json()["upgrade_operations"]] == [str(fleet["fresh"].pk)]
        response = writer.post(upgrade, {"group": str(fleet["group"].pk)})
        assert [op["device"] for op in response.json()["upgrade_operations"]] == [str(fleet["older"].pk)]
        assert response.json()["group"] == str(fleet["group"].pk)

    def test_batch_list_detail_and_filters(self, writer, admin_client, build, fleet, other_organization):
        first = writer.post(url(BUILDS, build.pk, "upgrade")).json()
        # finish everything: success for all but the aborted one
        BatchUpgradeOperation.objects.get(pk=first["id"]).operations.filter(status="in-progress").update(
            status=UpgradeStatus.SUCCESS
        )
        services.refresh_batch(first["id"])
        theirs_build = BuildFactory(category=CategoryFactory(organization=other_organization))
        theirs = BatchUpgradeOperation.objects.create(build=theirs_build, organization=other_organization)
        assert ids(writer.get(BATCHES)) == [first["id"]]
        body = writer.get(url(BATCHES, first["id"])).json()
        assert body["status"] == BatchStatus.FAILED and body["finished"]
        assert (body["success_count"], body["aborted_count"], body["progress_report"]) == (2, 1, "3 out of 3")
        assert (body["success_rate"], body["failed_rate"], body["aborted_rate"]) == (67, 0, 33)
        assert ids(writer.get(BATCHES, {"build": str(build.pk)})) == [first["id"]]
        assert ids(writer.get(BATCHES, {"status": "failed"})) == [first["id"]]
        assert ids(writer.get(BATCHES, {"status": "success"})) == []
        assert ids(admin_client.get(BATCHES, {"organization": other_organization.slug})) == [str(theirs.pk)]
        error_of(writer.get(BATCHES, {"status": "bogus"}), 422)
        error_of(writer.get(url(BATCHES, theirs.pk)), 404)
        assert ids(writer.get(OPERATIONS, {"batch": first["id"]})) and len(ids(writer.get(OPERATIONS))) == 3

    def test_refusals(self, writer, viewer, build, fleet, other_organization, admin_client):
        upgrade = url(BUILDS, build.pk, "upgrade")
        error_of(viewer.get(upgrade), 403)
        error_of(viewer.post(upgrade), 403)
        theirs = BuildFactory(category=CategoryFactory(organization=other_organization))
        error_of(writer.get(url(BUILDS, theirs.pk, "upgrade")), 404)
        error_of(writer.post(url(BUILDS, theirs.pk, "upgrade")), 404)
        error = error_of(writer.post(upgrade, {"upgrade_options": {"reboot": "never"}}), 422)
        assert "body.upgrade_options.reboot" in fields_of(error)
        other_group = DeviceGroupFactory(organization=other_organization)
        error = error_of(writer.post(upgrade, {"group": str(other_group.pk)}), 422)
        assert "body.group" in fields_of(error)
        error = error_of(admin_client.post(upgrade, {"group": str(other_group.pk)}), 422)
        assert "another organization" in fields_of(error)["body.group"]
        empty = BuildFactory(category=build.category, version="99")
        error = error_of(writer.post(url(BUILDS, empty.pk, "upgrade")), 409)
        assert "No device" in error["message"]
        assert not BatchUpgradeOperation.objects.exists()

    def test_shared_build_upgrades_only_the_callers_organization(
        self, client_as, admin_client, connected_device, organization, other_organization
    ):
        shared = BuildFactory(category=CategoryFactory(organization=None))
        image = make_image(shared)
        mine, theirs = connected_device(), connected_device(org=other_organization)
        writer = client_as(Role.NETWORK_ADMIN)[0]
        upgrade = url(BUILDS, shared.pk, "upgrade")
        assert writer.get(upgrade).json()["devices"] == [str(mine.pk)]
        response = writer.post(upgrade)
        assert response.status_code == 201, response.content
        assert response.json()["organization"] == str(organization.pk)
        assert [op["device"] for op in response.json()["upgrade_operations"]] == [str(mine.pk)]
        # a superuser may upgrade every organization at once, or pick one
        UpgradeOperation.objects.update(status=UpgradeStatus.SUCCESS)
        DeviceFirmware.objects.create(device=mine, image=image, installed=True)
        assert admin_client.get(upgrade).json() == {"device_firmwares": [], "devices": [str(theirs.pk)]}
        response = admin_client.post(upgrade, {"organization": str(other_organization.pk)})
        assert [op["device"] for op in response.json()["upgrade_operations"]] == [str(theirs.pk)]


def test_list_query_counts_do_not_grow_with_the_list(writer, build, connected_device, organization):
    image = make_image(build)

    def add_rows():
        device = connected_device()
        services.start_upgrade(device=device, image=image)
        services.start_batch_upgrade(build=build, devices=Device.objects.filter(pk=device.pk))
        make_image(BuildFactory(category=CategoryFactory(organization=organization)))

    def queries(path):
        with CaptureQueriesContext(connection) as captured:
            assert writer.get(path).status_code == 200
        return len(captured)

    paths = (OPERATIONS, BATCHES, BUILDS, CATEGORIES)
    add_rows()
    before = {path: queries(path) for path in paths}
    for _ in range(4):
        add_rows()
    assert {path: queries(path) for path in paths} == before
