"""End to end with real processes: a mass upgrade over three sshd-backed devices, run by a real Celery worker
consuming the firmware queue, one device failing."""

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from netfleet.firmware.choices import BatchStatus, UpgradeStatus
from netfleet.firmware.factories import ARCHER_C7_V5, BuildFactory, CategoryFactory, image_content, make_image
from netfleet.firmware.models import DeviceFirmware, UpgradeOperation

from .devices import FirmwareHost, firmware_settings, ssh_device
from .helpers import BATCHES, BUILDS, images_url, url

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def firmware_worker(transactional_db, settings, sshd):
    """A real `celery worker` (netfleet/testing/celery_worker.py) that also consumes the firmware queue, as
    `netfleet serve` runs it, with the upgrader pointed at the sysupgrade stand-in and the test's media."""
    from django.db import connection

    from netfleet.celery import app
    from netfleet.testing.celery_worker import CeleryWorker, database_url_for, isolated_broker_url, use_broker

    broker, database = os.environ.get("CELERY_BROKER_URL", ""), os.environ.get("DATABASE_URL", "")
    if not broker.startswith("redis") or not database.startswith("postgres"):
        (pytest.fail if os.environ.get("CI") else pytest.skip)("needs the suite's Redis and PostgreSQL (`make test`)")
    values = firmware_settings(sshd)
    env = {name: str(value) for name, value in values.items()}
    env.update(
        NETFLEET_DATA_DIR=str(settings.MEDIA_ROOT.parent),  # the worker reads the images the test uploads
        NETFLEET_SECRET_KEYS=",".join(settings.NETFLEET_SECRET_KEYS),  # and decrypts the credentials it stores
        SECRET_KEY=settings.SECRET_KEY,
        NETFLEET_FIRMWARE_CONCURRENCY="3",
    )
    isolated = isolated_broker_url(broker)
    use_broker(app, isolated)
    worker = CeleryWorker(
        broker_url=isolated, database_url=database_url_for(database, connection.settings_dict["NAME"]), extra_env=env
    )
    try:
        worker.start()
        replies = app.control.add_consumer(settings.NETFLEET_FIRMWARE_QUEUE, reply=True, timeout=10, limit=1)
        assert replies and all("ok" in next(iter(reply.values())) for reply in replies), replies
        yield worker
    finally:
        worker.stop()
        use_broker(app, broker)
        shutil.rmtree(Path(values["NETFLEET_FIRMWARE_OPENWRT_UPGRADE_COMMAND"]).parent, ignore_errors=True)
        shutil.rmtree(values["NETFLEET_FIRMWARE_OPENWRT_UPLOAD_DIR"], ignore_errors=True)


def wait_for(predicate, timeout=60, interval=0.3, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met after {timeout}s" + (f"; worker log:\n{log()}" if log else ""))


def test_mass_upgrade_of_three_devices_with_one_failing(firmware_worker, make_sshd, writer, organization):
    servers = [make_sshd() for _ in range(3)]
    hosts = [FirmwareHost(server) for server in servers]
    hosts[1].set("fail")  # the second device's flash fails
    devices = [ssh_device(organization, server, name=f"ap-{index}") for index, server in enumerate(servers)]
    category = CategoryFactory(organization=organization)
    older = BuildFactory(category=category, version="22.03.5")
    current = DeviceFirmware.objects.create(device=devices[0], image=make_image(older), installed=True)
    build = BuildFactory(category=category, version="23.05.3")
    content = image_content(build, size=2 * 1024 * 1024)
    response = writer.post(
        images_url(build), {"type": ARCHER_C7_V5, "file": SimpleUploadedFile("fw.bin", content)}, format="multipart"
    )
    assert response.status_code == 201, response.content

    upgrade = url(BUILDS, build.pk, "upgrade")
    dry_run = writer.get(upgrade).json()
    assert dry_run == {"device_firmwares": [str(current.pk)], "devices": [str(devices[1].pk), str(devices[2].pk)]}
    response = writer.post(upgrade)
    assert response.status_code == 201, response.content
    batch_url = url(BATCHES, response.json()["batch"])
    assert {op["device"] for op in response.json()["upgrade_operations"]} == {str(d.pk) for d in devices}

    def finished():
        body = writer.get(batch_url).json()
        return body if body["status"] != BatchStatus.IN_PROGRESS else None

    body = wait_for(finished, log=firmware_worker.log)
    assert body["status"] == BatchStatus.FAILED, (body, firmware_worker.log())
    assert (body["operations_count"], body["success_count"], body["failed_count"]) == (3, 2, 1)
    assert (body["progress_report"], body["success_rate"], body["failed_rate"]) == ("3 out of 3", 67, 33)
    operations = {op.device_id: op for op in UpgradeOperation.objects.filter(batch_id=body["id"])}
    failed = operations[devices[1].pk]
    assert failed.status == UpgradeStatus.FAILED and "sysupgrade exited with code 1" in failed.log
    sha256 = hashlib.sha256(content).hexdigest()
    for index in (0, 2):
        assert operations[devices[index].pk].status == UpgradeStatus.SUCCESS, operations[devices[index].pk].log
        assert hosts[index].read("flashed.sha256") == sha256 and hosts[index].read("version") == build.os
        firmware = DeviceFirmware.objects.get(device=devices[index])
        assert firmware.installed and firmware.image.build == build
    assert not DeviceFirmware.objects.filter(device=devices[1]).exists()
    assert hosts[1].read("flashed.sha256") is None
    assert "run_upgrades" in firmware_worker.log()
