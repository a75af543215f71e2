"""Ingest behind the spool, as the HTTP server runs it: documents are answered once spooled, stored by the writer
thread with the same values as a direct store, and a spool left by a dead process is stored once — replaying it
again (or a document already stored) counts nothing twice."""

from datetime import UTC, datetime, timedelta

import pytest

from netfleet.controller.factories import make_device
from netfleet.monitoring import ingest
from netfleet.monitoring.models import DeviceMonitoring, Point

from .conftest import document

pytestmark = pytest.mark.django_db(transaction=True)  # the writer thread has its own connection

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def spool_writer(directory):
    return ingest.spool_writer(directory, max_batch=4)


@pytest.fixture
def spooled(tmp_path, monkeypatch):
    writer = spool_writer(tmp_path / "spool")
    monkeypatch.setattr(ingest, "_spool", writer)
    yield writer
    writer.stop()


def rx_deltas(device):
    points = Point.objects.filter(device=device, metric="traffic", tag="eth0", field="rx_bytes").order_by("time")
    return list(points.values_list("value", flat=True))


def test_documents_posted_behind_the_spool_are_stored_exactly(organization, post_document, spooled):
    device = make_device(organization)
    readings = [(0, 1000), (5, 1600), (10, 300), (15, 700)]  # a counter reset at 10:10
    for minute, rx in readings:
        response = post_document(device, document(rx=rx), time=T0 + timedelta(minutes=minute))
        assert response.status_code == 200, response.content
    assert spooled.flush(timeout=30)
    assert rx_deltas(device) == [1000, 600, 300, 400]
    monitoring = DeviceMonitoring.objects.get(device=device)
    assert monitoring.last_data_time is not None and monitoring.status == "ok"
    assert spooled.backlog == 0


def test_an_invalid_document_is_refused_before_it_is_spooled(organization, post_document, spooled, tmp_path):
    device = make_device(organization)
    doc = document(rx=1)
    doc["resources"]["load"] = "high"
    response = post_document(device, doc)
    assert response.status_code == 400
    assert "resources.load" in response.json()["error"]["message"]
    assert spooled.backlog == 0
    assert all(path.stat().st_size == 0 for path in (tmp_path / "spool").glob("*.spool"))


def write_orphan(directory, documents):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "gone.lock").touch()  # nobody holds it: its process is gone
    lines = b"".join(ingest._encode(item) + b"\n" for item in documents)
    (directory / "gone-00000001.spool").write_bytes(lines)


def test_a_dead_process_spool_is_stored_once_even_when_replayed_twice(organization, tmp_path):
    device = make_device(organization)
    found = ingest.find_device(device.pk)
    received = datetime.now(UTC)
    documents = [
        ingest.Document(found, document(rx=rx), T0 + timedelta(minutes=5 * n), False, received)
        for n, rx in enumerate([100, 250, 400])
    ]
    directory = tmp_path / "spool"
    for _ in range(2):  # e.g. the process died after storing them, before deleting its spool
        write_orphan(directory, documents)
        writer = spool_writer(directory)
        writer.submit(ingest.Document(found, document(rx=400), T0 + timedelta(minutes=10), False, received))
        assert writer.flush(timeout=30)  # the orphan is replayed before the writer's own items
        writer.stop()
        assert not list(directory.iterdir())
    assert rx_deltas(device) == [100, 150, 150]
    assert Point.objects.filter(device=device).count() == Point.objects.filter(device=device).distinct().count()


def test_a_spooled_document_of_a_device_deleted_since_is_dropped(organization, tmp_path):
    device = make_device(organization)
    found = ingest.find_device(device.pk)
    stale = ingest.Document(found, document(rx=1), T0, False, datetime.now(UTC))
    directory = tmp_path / "spool"
    write_orphan(directory, [stale])
    type(device).objects.filter(pk=device.pk).delete()
    other = make_device(organization)
    writer = spool_writer(directory)
    writer.submit(ingest.Document(ingest.find_device(other.pk), document(rx=5), T0, False, datetime.now(UTC)))
    assert writer.flush(timeout=30)
    writer.stop()
    assert rx_deltas(other) == [5]
    assert not Point.objects.exclude(device=other).exists()
