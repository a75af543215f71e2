"""Ingest behind the spool, as `netfleet serve` runs it: a document is answered once spooled and stored by the
writer with the same values as a direct store; lines spooled again (a writer that crashed before deleting them)
count nothing twice; a device deleted meanwhile loses its spooled data and nothing else."""

from datetime import UTC, datetime, timedelta

import pytest

from netfleet.controller.factories import make_device
from netfleet.core.spool import SpoolAppender
from netfleet.monitoring import ingest
from netfleet.monitoring.models import DeviceMonitoring, Point

from .conftest import document

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def spool(tmp_path, monkeypatch):
    """(appender the ingest endpoint writes to, the writer's reader)."""
    appender = SpoolAppender(tmp_path)
    monkeypatch.setattr(ingest, "_spool", appender)
    return appender, ingest.spool_reader(tmp_path, max_batch=3)


def rx_deltas(device):
    points = Point.objects.filter(device=device, metric="traffic", tag="eth0", field="rx_bytes").order_by("time")
    return list(points.values_list("value", flat=True))


def test_documents_are_answered_when_spooled_and_stored_exactly_by_the_writer(organization, post_document, spool):
    _, reader = spool
    device = make_device(organization)
    for minute, rx in [(0, 1000), (5, 1600), (10, 300), (15, 700)]:  # a counter reset at 10:10
        response = post_document(device, document(rx=rx), time=T0 + timedelta(minutes=minute))
        assert response.status_code == 200, response.content
    assert not Point.objects.exists()  # accepted, not stored yet
    assert reader.drain() == 4
    assert rx_deltas(device) == [1000, 600, 300, 400]
    assert DeviceMonitoring.objects.get(device=device).status == "ok"


def test_an_invalid_document_is_refused_before_it_is_spooled(organization, post_document, spool, tmp_path):
    _, reader = spool
    doc = document(rx=1)
    doc["resources"]["load"] = "high"
    response = post_document(make_device(organization), doc)
    assert response.status_code == 400
    assert "resources.load" in response.json()["error"]["message"]
    assert reader.drain() == 0


def test_lines_spooled_twice_are_stored_once(organization, tmp_path):
    device = make_device(organization)
    found, received = ingest.find_device(device.pk), datetime.now(UTC)
    lines = [
        ingest._encode(ingest.Document(found, document(rx=rx), T0 + timedelta(minutes=5 * n), False, received))
        for n, rx in enumerate([100, 250, 400])
    ]
    reader = ingest.spool_reader(tmp_path)
    for _ in range(2):  # e.g. the writer stored them and died before deleting their segment
        (tmp_path / "gone-00000001.spool").write_bytes(b"".join(line + b"\n" for line in lines))
        assert reader.drain() == 3
        assert not list(tmp_path.glob("*.spool"))  # its process is gone: done with
    assert rx_deltas(device) == [100, 150, 150]


def test_a_device_deleted_since_loses_only_its_own_spooled_data(organization, tmp_path):
    gone, kept = make_device(organization), make_device(organization)
    received = datetime.now(UTC)
    lines = [
        ingest._encode(ingest.Document(ingest.find_device(device.pk), document(rx=rx), T0, False, received))
        for device, rx in [(gone, 1), (kept, 5)]
    ]
    type(gone).objects.filter(pk=gone.pk).delete()
    (tmp_path / "gone-00000001.spool").write_bytes(b"".join(line + b"\n" for line in lines))
    assert ingest.spool_reader(tmp_path).drain() == 2
    assert rx_deltas(kept) == [5]
    assert not Point.objects.exclude(device=kept).exists()


def test_a_full_spool_answers_503(organization, post_document, tmp_path, monkeypatch):
    appender = SpoolAppender(tmp_path, max_lag_bytes=1, wait_seconds=0.1)
    monkeypatch.setattr(ingest, "_spool", appender)
    device = make_device(organization)
    assert post_document(device, document(rx=1), time=T0).status_code == 200
    response = post_document(device, document(rx=2), time=T0 + timedelta(minutes=5))
    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert response.json()["error"]["message"] == "Metric storage is behind; send this document again later"
