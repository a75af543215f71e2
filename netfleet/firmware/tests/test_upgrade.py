"""The OpenWrt upgrader against real sshd hosts (run in-process, as a worker runs it): upload over SFTP with the
checksum verified on the host, the sysupgrade stand-in, reboots, and every way an upgrade stops."""

import hashlib
import os
from datetime import timedelta

import asyncssh
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from netfleet.connections.models import DeviceConnection
from netfleet.firmware import services
from netfleet.firmware.choices import BatchStatus, UpgradeStatus, UpgradeStep
from netfleet.firmware.factories import ARCHER_C7_V5, BuildFactory, CategoryFactory, image_content, make_image
from netfleet.firmware.models import BatchUpgradeOperation, DeviceFirmware, UpgradeOperation
from netfleet.monitoring.models import MaintenanceWindow
from netfleet.testing.servers import free_port

from .devices import FirmwareHost, reboot_when_asked, ssh_device
from .helpers import OPERATIONS, device_url, images_url, url

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


@pytest.fixture
def build(organization):
    return BuildFactory(category=CategoryFactory(organization=organization), version="23.05.3")


@pytest.fixture
def host(sshd, upgrader_settings):
    return FirmwareHost(sshd)


def upgrade(device, image, **options):
    operation = services.start_upgrade(device=device, image=image, upgrade_options=options)
    services.run_upgrades(operation_ids=[operation.pk])
    operation.refresh_from_db()
    return operation


def uploads_left(settings):
    return os.listdir(settings.NETFLEET_FIRMWARE_OPENWRT_UPLOAD_DIR)


def test_happy_path_over_the_api(writer, sshd, host, build, organization, upgrader_settings):
    content = image_content(build, size=3 * MIB)
    response = writer.post(
        images_url(build),
        {"type": ARCHER_C7_V5, "file": SimpleUploadedFile("openwrt-23.05.3-sysupgrade.bin", content)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    sha256 = hashlib.sha256(content).hexdigest()
    assert response.json()["sha256"] == sha256
    device = ssh_device(organization, sshd)
    response = writer.put(device_url(device, "firmware"), {"image": response.json()["id"]})
    assert response.status_code == 201, response.content
    operation_id = response.json()["upgrade_operation"]["id"]

    services.run_upgrades(operation_ids=[operation_id])  # what the firmware queue's worker runs

    body = writer.get(url(OPERATIONS, operation_id)).json()
    assert body["status"] == UpgradeStatus.SUCCESS, body["log"]
    assert (body["step"], body["progress"]) == (UpgradeStep.DONE, 100)
    assert body["started"] and body["flashing_started"] and body["finished"]
    log = body["log"]
    for line in (
        "Free space in",
        "Uploading openwrt-23.05.3-sysupgrade.bin (3.0 MiB)",
        f"Checksum verified on the device: sha256 {sha256}",
        "The device accepted the image (sysupgrade --test)",
        "(keeping the configuration)",
        "Commencing upgrade",
        f"The device runs {build.os}",
        "Upgrade completed successfully",
    ):
        assert line in log, (line, log)
    assert "Uploaded 3.0 MiB of 3.0 MiB" in log and log.count("Uploaded ") >= 5  # progress while uploading
    # the host received exactly the image, and was flashed with the configuration kept
    assert host.read("flashed.sha256") == sha256 and host.read("version") == build.os
    calls = host.calls()
    assert len(calls) == 2 and calls[0].startswith("--test ") and calls[1].startswith("-v ")
    assert " -n" not in calls[1] and " -F" not in calls[1]
    firmware = writer.get(device_url(device, "firmware")).json()
    assert firmware["installed"] is True and firmware["upgrade_operation"]["status"] == "success"
    assert MaintenanceWindow.objects.filter(device=device, reason__startswith="firmware upgrade").exists()
    connection = DeviceConnection.objects.get(device=device)
    assert connection.is_working is True and connection.host_key
    assert uploads_left(upgrader_settings) == []


def test_device_reboots_and_comes_back(make_sshd, upgrader_settings, organization, build):
    server = make_sshd()
    host = FirmwareHost(server)
    host.set("reboot")
    device = ssh_device(organization, server)
    rebooter = reboot_when_asked(host, down=1.0)
    operation = upgrade(device, make_image(build, content=image_content(build, size=MIB)))
    rebooter.join(5)
    assert operation.status == UpgradeStatus.SUCCESS, operation.log
    assert "The device went away" in operation.log and "The device is back" in operation.log
    assert DeviceFirmware.objects.get(device=device).installed is True


def test_device_never_comes_back(make_sshd, upgrader_settings, organization, build):
    upgrader_settings.NETFLEET_FIRMWARE_REBOOT_TIMEOUT = 2
    server = make_sshd()
    host = FirmwareHost(server)
    host.set("reboot")
    device = ssh_device(organization, server, connect_timeout=1)
    reboot_when_asked(host, down=None)
    operation = upgrade(device, make_image(build))
    assert operation.status == UpgradeStatus.FAILED, operation.log
    assert operation.flashing_started is not None
    assert "Failed while waiting for the reboot: The device did not come back within 2 s" in operation.log
    assert "Connection refused" in operation.log
    assert not DeviceFirmware.objects.filter(device=device, installed=True).exists()


def test_corrupt_upload_fails_before_flashing(sshd, host, organization, build, upgrader_settings):
    image = make_image(build, content=image_content(build, size=MIB))
    with open(image.file.path, "r+b") as stored:  # the stored file rots after its checksum was recorded
        stored.seek(1000)
        stored.write(b"\x00corrupt\x00")
    operation = upgrade(ssh_device(organization, sshd), image)
    assert operation.status == UpgradeStatus.FAILED, operation.log
    assert "Failed while verifying the upload: Checksum mismatch (the stored image file is corrupt)" in operation.log
    assert f"the image's recorded sha256 is {image.sha256}" in operation.log
    assert operation.flashing_started is None and host.calls() == []  # never flashed
    assert uploads_left(upgrader_settings) == []  # the bad upload was removed
    assert not MaintenanceWindow.objects.filter(ends__gt=timezone.now()).exists()  # alerts count again


def test_insufficient_space_aborts(sshd, host, organization, build, upgrader_settings):
    upgrader_settings.NETFLEET_FIRMWARE_OPENWRT_MIN_FREE_SPACE = 10**15  # more than any disk here
    operation = upgrade(ssh_device(organization, sshd), make_image(build))
    assert operation.status == UpgradeStatus.ABORTED, operation.log
    assert "Aborted while checking the device: Not enough free space in" in operation.log
    assert host.calls() == [] and uploads_left(upgrader_settings) == []


def test_image_refused_by_the_device_aborts(sshd, host, organization, build, upgrader_settings):
    host.set("refuse")
    operation = upgrade(ssh_device(organization, sshd), make_image(build))
    assert operation.status == UpgradeStatus.ABORTED, operation.log
    assert "The device refused the image: Image metadata not present" in operation.log
    assert [call.split()[0] for call in host.calls()] == ["--test"] and uploads_left(upgrader_settings) == []


def test_failed_flash_keeps_the_firmware(sshd, host, organization, build, upgrader_settings):
    host.set("fail")
    device = ssh_device(organization, sshd)
    operation = upgrade(device, make_image(build))
    assert operation.status == UpgradeStatus.FAILED, operation.log
    assert "Flash write failed: I/O error" in operation.log
    assert "Failed while flashing: sysupgrade exited with code 1; the device keeps its firmware" in operation.log
    assert not DeviceFirmware.objects.filter(device=device).exists()
    assert uploads_left(upgrader_settings) == []


def test_options_reach_sysupgrade_and_a_new_host_key_is_trusted(sshd, host, organization, build):
    device = ssh_device(organization, sshd)
    stale = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    DeviceConnection.objects.filter(device=device).update(host_key=stale)
    operation = upgrade(device, make_image(build), keep_config=False, force=True)
    assert operation.status == UpgradeStatus.FAILED  # the stale key is refused before anything happens
    assert "Host key verification failed" in operation.log and host.calls() == []

    DeviceConnection.objects.filter(device=device).update(host_key="", is_working=None)
    operation = upgrade(device, operation.image, keep_config=False, force=True)
    assert operation.status == UpgradeStatus.SUCCESS, operation.log
    assert host.calls()[-1].startswith("-v -n -F ") and "(discarding the configuration)" in operation.log
    connection = DeviceConnection.objects.get(device=device)
    assert connection.host_key.split()[:2] == (sshd.host_key.with_suffix(".pub")).read_text().split()[:2]


def test_already_running_the_build_aborts_unless_forced(sshd, host, organization, build):
    device = ssh_device(organization, sshd)
    image = make_image(build)
    assert upgrade(device, image).status == UpgradeStatus.SUCCESS
    again = upgrade(device, image)
    assert again.status == UpgradeStatus.ABORTED and f"already runs {build.os}" in again.log
    assert upgrade(device, image, force=True).status == UpgradeStatus.SUCCESS


def test_unreachable_device_fails_while_connecting(sshd, host, organization, build):
    device = ssh_device(organization, sshd)
    DeviceConnection.objects.filter(device=device).update(is_working=True)
    credentials = DeviceConnection.objects.get(device=device).credentials
    credentials.params = {**credentials.params, "port": free_port()}
    credentials.save()
    operation = upgrade(device, make_image(build))
    assert operation.status == UpgradeStatus.FAILED
    assert "Failed while connecting: Connection refused" in operation.log
    assert DeviceConnection.objects.get(device=device).is_working is False


def test_preconditions_abort_without_touching_the_device(sshd, host, organization, build):
    device = ssh_device(organization, sshd)
    operation = services.start_upgrade(device=device, image=make_image(build))
    device.model = "GL-MT300N-V2"  # the device reported another model since
    device.save()
    services.run_upgrades(operation_ids=[operation.pk])
    operation.refresh_from_db()
    assert operation.status == UpgradeStatus.ABORTED and "does not fit the device model" in operation.log
    assert host.calls() == []


def test_cancelled_before_it_runs_is_never_flashed(writer, sshd, host, organization, build):
    operation = services.start_upgrade(device=ssh_device(organization, sshd), image=make_image(build))
    assert writer.post(url(OPERATIONS, operation.pk, "cancel")).status_code == 200
    services.run_upgrades(operation_ids=[operation.pk])
    operation.refresh_from_db()
    assert operation.status == UpgradeStatus.CANCELLED and operation.started is None and host.calls() == []


def test_cancel_while_running_stops_before_flashing(sshd, host, organization, build, upgrader_settings, monkeypatch):
    operation = services.start_upgrade(device=ssh_device(organization, sshd), image=make_image(build))
    log = services.Recorder.log

    def operator_cancels_during_verification(recorder, line, **kwargs):
        log(recorder, line, **kwargs)
        if line.startswith("Verifying the checksum"):  # the operator's cancel lands while the device checks
            services.cancel_upgrade(operation=UpgradeOperation.objects.get(pk=recorder.operation.pk))

    monkeypatch.setattr(services.Recorder, "log", operator_cancels_during_verification)
    services.run_upgrades(operation_ids=[operation.pk])
    operation.refresh_from_db()
    assert operation.status == UpgradeStatus.CANCELLED and operation.flashing_started is None
    assert "Cancelled by the operator\n" in operation.log
    assert operation.log.endswith("Stopped: cancelled by the operator before flashing\n")
    assert [call.split()[0] for call in host.calls()] == ["--test"]  # never flashed
    assert uploads_left(upgrader_settings) == []


def test_redelivered_operation_is_not_run_twice(organization, build, connected_device):
    operation = services.start_upgrade(device=connected_device(), image=make_image(build))
    UpgradeOperation.objects.filter(pk=operation.pk).update(started=timezone.now())
    assert services.operation_to_run(operation.pk) is None
    operation.refresh_from_db()
    assert operation.status == UpgradeStatus.FAILED and "Interrupted" in operation.log


def test_sweep_fails_stale_operations_and_updates_their_batch(organization, build, connected_device):
    now = timezone.now()
    image = make_image(build)
    batch = BatchUpgradeOperation.objects.create(build=build, organization=organization, status="in-progress")
    stale = services.start_upgrade(device=connected_device(), image=image)
    fresh = services.start_upgrade(device=connected_device(), image=image)
    UpgradeOperation.objects.filter(pk=stale.pk).update(deadline=now - timedelta(seconds=1), batch=batch)
    assert services.fail_stale_upgrades(now=now) == 1
    stale.refresh_from_db(), fresh.refresh_from_db(), batch.refresh_from_db()
    assert stale.status == UpgradeStatus.FAILED and "deadline" in stale.log and stale.finished == now
    assert fresh.status == UpgradeStatus.IN_PROGRESS
    assert batch.status == BatchStatus.FAILED and batch.finished


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({}, BatchStatus.IDLE),
        ({"in-progress": 1, "failed": 2}, BatchStatus.IN_PROGRESS),
        ({"success": 3, "failed": 1}, BatchStatus.FAILED),
        ({"success": 3, "aborted": 1}, BatchStatus.FAILED),
        ({"success": 3, "cancelled": 1}, BatchStatus.FAILED),
        ({"success": 3}, BatchStatus.SUCCESS),
    ],
)
def test_batch_status_follows_its_operations(counts, expected):
    assert services.aggregate_status(counts) == expected
