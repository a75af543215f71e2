"""Concurrent ingest against a real `netfleet serve` (two HTTP worker processes, the embedded SQLite database, the
monitoring writer): documents sent at once by many clients are all stored, with exact counter deltas, nothing lost
or doubled."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from netfleet.monitoring import netjson
from netfleet.monitoring.tests.conftest import INGEST_TIME, document
from netfleet.testing.live import EmbeddedInstance

pytestmark = pytest.mark.live

DEVICES = 6
DOCUMENTS = 15  # per device, each device's sent by its own client, all clients at once

MAKE_DEVICES = """
import json
from netfleet.accounts.models import Organization
from netfleet.controller.services import create_device
org = Organization.objects.get(slug="default")
devices = [
    create_device(organization=org, name=f"%(prefix)s-{n}", mac_address=f"02:00:00:00:%(byte)s:{n:02x}")
    for n in range(%(count)d)
]
print(json.dumps([[device.pk.hex, device.key] for device in devices]))
"""

COUNT_POINTS = """
import json
from django.db.models import Count, Sum
from netfleet.monitoring.models import DeviceMonitoring, Point
rx = Point.objects.filter(metric="traffic", tag="eth0", field="rx_bytes").values("device_id").annotate(
    n=Count("id"), total=Sum("value"))
print(json.dumps({
    "points": Point.objects.count(),
    "rx": sorted([row["n"], row["total"]] for row in rx),
    "monitored": DeviceMonitoring.objects.filter(last_data_time__isnull=False).count(),
}))
"""


def make_devices(instance, count, *, prefix, byte):
    """[(id hex, key)] of `count` new devices named <prefix>-<n>, MACs 02:00:00:00:<byte>:<n>."""
    made = instance.manage("shell", "-c", MAKE_DEVICES % {"count": count, "prefix": prefix, "byte": byte})
    return json.loads(made.stdout.strip().splitlines()[-1])


COUNT_DEVICE_POINTS = """
from netfleet.monitoring.models import Point
print(Point.objects.filter(device_id="%s").count())
"""


@pytest.fixture(scope="module")
def instance():
    embedded = EmbeddedInstance(workers=2, serve_args=["--no-celery"]).start()
    yield embedded
    embedded.stop()


def test_concurrent_documents_are_all_stored_once(instance):
    devices = make_devices(instance, DEVICES, prefix="ap", byte="10")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    failures = []

    def send(device_id, key):
        with httpx.Client(base_url=instance.base_url, timeout=30) as client:
            for n in range(DOCUMENTS):
                # eth0 counts up by 1000 a document; resend every 5th one (deduplicated by its time)
                collected = (start + timedelta(minutes=5 * n)).strftime(INGEST_TIME)
                for _ in range(2 if n % 5 == 0 else 1):
                    response = client.post(
                        f"/api/v1/monitoring/device/{device_id}/",
                        params={"key": key, "time": collected},
                        json=document(rx=1000 * (n + 1), clients=["aa:bb:cc:00:00:01"]),
                    )
                    if response.status_code != 200:
                        failures.append(response.text)

    threads = [threading.Thread(target=send, args=device) for device in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    per_document = len(netjson.derive(document(rx=1, clients=["aa:bb:cc:00:00:01"]), {}).points)
    deadline = time.monotonic() + 60
    while True:  # answered once spooled: the monitoring writer stores them behind the answers
        stored = json.loads(instance.manage("shell", "-c", COUNT_POINTS).stdout.strip().splitlines()[-1])
        if stored["points"] >= per_document * DEVICES * DOCUMENTS or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert stored["monitored"] == DEVICES
    # every document's rx delta once: the first counts whole (1000), then +1000 each, summing to the last counter
    assert stored["rx"] == [[DOCUMENTS, 1000 * DOCUMENTS]] * DEVICES
    assert stored["points"] == per_document * DEVICES * DOCUMENTS
    assert list((instance.data_dir / "spool" / "monitoring").glob("*.lock"))  # it went through the spool


# 10-minute buckets of the deltas: 1,000 + 1,000 each, except the reset's (500 counts whole, then 8,000 - 500)
EXPECTED_DOWNLOAD = [2000, 2000, 2000, 500 + 7500, 2000, 2000]


def test_a_device_round_trip_over_http(instance):
    """A device's documents posted to the server, read back through the chart endpoint (device key auth): exact
    counter deltas, a resend not counted twice, an invalid document refused with nothing stored."""
    ((device_id, key),) = make_devices(instance, 1, prefix="round-trip", byte="20")
    start = datetime(2026, 2, 1, tzinfo=UTC)
    url = f"/api/v1/monitoring/device/{device_id}/"
    with httpx.Client(base_url=instance.base_url, timeout=30) as client:
        for n in range(12):  # 00:00-00:55, every 5 minutes; eth0 counts 1,000 more each time (a reset at 00:30)
            rx = 500 if n == 6 else 1000 * (n + 1)
            params = {"key": key, "time": (start + timedelta(minutes=5 * n)).strftime(INGEST_TIME)}
            for _ in range(2 if n == 3 else 1):  # the fourth one sent twice
                assert client.post(url, params=params, json=document(rx=rx)).status_code == 200
        bad = document(rx=1)
        bad["interfaces"][0]["statistics"]["rx_bytes"] = "many"
        refused = client.post(url, params={"key": key}, json=bad)
        assert refused.status_code == 400 and "interfaces" in refused.json()["error"]["message"]

        query = {"key": key, "start": "2026-02-01 00:00:00", "end": "2026-02-01 01:00:00"}
        deadline = time.monotonic() + 30
        while True:  # stored by the monitoring writer behind the answers
            body = client.get(url, params=query).json()
            # (the chart appears once the writer stored the interface's first points)
            traffic = next((chart for chart in body["charts"] if chart["title"] == "Traffic: eth0"), None)
            download = dict(traffic["traces"])["download"] if traffic else None
            if download == EXPECTED_DOWNLOAD or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert download == EXPECTED_DOWNLOAD
    stored = json.loads(instance.manage("shell", "-c", COUNT_DEVICE_POINTS % device_id).stdout.strip().splitlines()[-1])
    per_document = len(netjson.derive(document(rx=1), {}).points)
    assert stored == per_document * 12  # each document once; the invalid one stored nothing
