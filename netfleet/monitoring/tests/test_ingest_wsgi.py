"""Metric ingest answered below Django (netfleet.wsgi -> monitoring.api.views.ingest_wsgi), called as a WSGI server
would call it: the same answers as Django's fast view, without Django's request cycle.

Transactional tests: the WSGI answer ends with Django's end-of-request connection check, which (as for any request
served outside the test client) drops a connection left inside a transaction.
"""

import io
import logging
import re
import time
from datetime import UTC, datetime

import orjson
import pytest
import time_machine
from django.core import signals
from django.db import connection
from django.test import Client, override_settings

from netfleet.controller.factories import make_device
from netfleet.core.logging import RequestIdFilter
from netfleet.core.spool import SpoolAppender
from netfleet.monitoring import ingest
from netfleet.monitoring.models import DeviceMonitoring, Point
from netfleet.monitoring.timeseries import to_us
from netfleet.testing.fixtures import unreachable_ratelimit_store
from netfleet.wsgi import application

from .conftest import INGEST_TIME, document

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


class Answer:
    def __init__(self, status, headers, body, by_django):
        self.status_line = status
        self.status = int(status.split()[0])
        self.header_list = headers
        self.headers = dict(headers)
        self.body = body
        self.by_django = by_django  # whether Django's request cycle ran (request_started was sent)

    def json(self):
        return orjson.loads(self.body)


class BrokenInput(io.BytesIO):
    def read(self, *args):
        raise AssertionError("the body must not be read")


class Trickle(io.BytesIO):
    """A request body arriving in small pieces (a read may return fewer bytes than asked)."""

    def read(self, size=-1):
        return super().read(min(size, 100) if size is not None and size >= 0 else 100)


def call(path, query="", body=b"", *, method="POST", stream=None, **extra):
    """Call netfleet.wsgi.application with a real environ; the Answer as the server would send it."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "192.0.2.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.url_scheme": "http",
        "wsgi.input": stream if stream is not None else io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        **extra,
    }
    started, django_ran = {}, []

    def on_request_started(**kwargs):
        django_ran.append(True)

    def start_response(status, headers, exc_info=None):
        started.update(status=status, headers=headers)

    signals.request_started.connect(on_request_started)
    try:
        chunks = application(environ, start_response)
        content = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
    finally:
        signals.request_started.disconnect(on_request_started)
    return Answer(started["status"], started["headers"], content, bool(django_ran))


def url(device, *, dashed=False, slash=True):
    return f"/api/v1/monitoring/device/{device.pk if dashed else device.pk.hex}" + ("/" if slash else "")


def post(device, doc=None, *, key=None, at=T0, extra_query="", body=None, **environ):
    query = f"key={key or device.key}"
    if at is not None:
        query += f"&time={at.strftime(INGEST_TIME)}"
    body = orjson.dumps(doc or document(rx=100, tx=50)) if body is None else body
    return call(url(device), query + extra_query, body, **environ)


@pytest.fixture
def clock():
    """Frozen at the start of a minute, so rate-limit windows are exact."""
    start = datetime.fromtimestamp((int(time.time()) // 60 + 1) * 60, tz=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller


def assert_envelope(answer, code, *, request_id=None):
    assert answer.status == code, answer.body
    assert answer.headers["Content-Type"] == "application/json"
    error = answer.json()["error"]
    assert error["code"] == code
    if request_id is not None:
        assert error["request_id"] == request_id
    return error


class TestStored:
    def test_document_is_stored_below_django(self, device):
        answer = post(device, document(rx=100, tx=50), extra_query="&current=true")
        assert (answer.status_line, answer.body) == ("200 OK", b"null")
        assert answer.headers["Content-Type"] == "application/json"
        assert not answer.by_django  # Django's request cycle never ran
        assert GENERATED_ID.match(answer.headers["X-Request-ID"])
        points = Point.objects.filter(device=device)
        assert points.count() > 0
        assert set(points.values_list("time", flat=True)) == {to_us(T0)}
        monitoring = DeviceMonitoring.objects.get(device=device)
        assert monitoring.status_data["type"] == "DeviceMonitoring"  # current=true: the device's status data
        assert monitoring.status_data["interfaces"][0]["statistics"]["rx_bytes"] == 100

    def test_without_current_the_status_data_is_not_replaced(self, device):
        assert post(device).status == 200
        assert Point.objects.filter(device=device).exists()
        assert not DeviceMonitoring.objects.filter(device=device).exclude(status_data={}).exists()

    @pytest.mark.parametrize(("dashed", "slash"), [(False, True), (False, False), (True, True), (True, False)])
    def test_trailing_slash_optional_and_both_id_forms(self, device, dashed, slash):
        answer = call(
            url(device, dashed=dashed, slash=slash),
            f"key={device.key}&time={T0.strftime(INGEST_TIME)}",
            orjson.dumps(document(rx=1)),
        )
        assert (answer.status, answer.body, answer.by_django) == (200, b"null", False)
        assert Point.objects.filter(device=device, time=to_us(T0)).exists()

    def test_query_is_read_as_django_reads_it(self, device, organization):
        body, other = orjson.dumps(document()), make_device(organization)
        assert call(url(device), f"key={other.key}&key={device.key}", body).status == 200  # the last value counts
        assert call(url(device), f"key={device.key}&key={other.key}", body).status == 403
        # a non-ASCII query (PEP 3333: bytes as latin-1) and a percent-encoded time
        raw = f"note=caf\u00e9&key={device.key}&time=01-03-2024_10%3A00%3A00.000000".encode().decode("latin-1")
        answer = call(url(device), raw, body)
        assert (answer.status, answer.by_django) == (200, False)
        assert Point.objects.filter(device=device, time=to_us(T0)).exists()

    def test_reads_exactly_content_length_bytes(self, device):
        body = orjson.dumps(document(rx=7))
        # more input than the Content-Length (a pipelined next request): only the body is read
        answer = call(url(device), f"key={device.key}", body, stream=io.BytesIO(body + b"GET / HTTP/1.1\r\n"))
        assert answer.status == 200, answer.body
        # a body that arrives in pieces is read to its end
        answer = call(url(device), f"key={device.key}", body, stream=Trickle(body), HTTP_X_REQUEST_ID="trickle")
        assert answer.status == 200, answer.body
        assert Point.objects.filter(device=device).exists()


class TestRefusals:
    def test_unknown_and_deactivated_devices_are_404(self, device, organization):
        gone = make_device(organization)
        gone.is_deactivated = True
        gone.save()
        for target in (gone.pk.hex, "0" * 32):
            answer = call(f"/api/v1/monitoring/device/{target}/", f"key={gone.key}", orjson.dumps(document()),
                          HTTP_X_REQUEST_ID="req-404")  # fmt: skip
            assert not answer.by_django
            assert answer.json() == {"error": {"code": 404, "message": "Not found.", "request_id": "ext-req-404"}}
            assert answer.headers["X-Request-ID"] == "req-404"
        assert not Point.objects.exists()

    def test_wrong_key_is_403(self, device, organization):
        other = make_device(organization)
        answer = post(device, key=other.key, HTTP_X_REQUEST_ID="req-403")
        assert answer.json() == {"error": {"code": 403, "message": "Wrong device key", "request_id": "ext-req-403"}}
        assert answer.status_line == "403 Forbidden" and not Point.objects.exists()

    def test_malformed_json_is_400(self, device):
        answer = post(device, body=b"{oops", HTTP_X_REQUEST_ID="req-json")
        error = assert_envelope(answer, 400, request_id="ext-req-json")
        assert error["message"].startswith("Malformed JSON: ")
        assert not Point.objects.exists()

    def test_invalid_document_is_400_naming_the_path(self, device):
        doc = document(rx=100)
        doc["interfaces"][0]["statistics"]["rx_bytes"] = "many"
        answer = post(device, doc, HTTP_X_REQUEST_ID="req-doc")
        error = assert_envelope(answer, 400, request_id="ext-req-doc")
        field = "body.interfaces[0].statistics.rx_bytes"
        assert error["details"][0]["field"] == field and field in error["message"]
        assert not Point.objects.exists() and not DeviceMonitoring.objects.exclude(status_data={}).exists()

    @pytest.mark.parametrize("raw", ["2024-03-01 10:00:00", "32-01-2024_10:00:00.000000", "x"])
    def test_bad_time_is_400(self, device, raw):
        answer = call(url(device), f"key={device.key}&time={raw}", orjson.dumps(document()))
        error = assert_envelope(answer, 400)
        assert error["details"] == [
            {"field": "query.time", "message": "Expected %d-%m-%Y_%H:%M:%S.%f", "type": "invalid"}
        ]
        assert error["request_id"] == answer.headers["X-Request-ID"]  # a generated id: the same in both
        assert not Point.objects.exists()

    @override_settings(NETFLEET_MAX_BODY_SIZE=100)
    def test_body_over_the_limit_is_413_unread(self, device):
        answer = post(device, stream=BrokenInput(), CONTENT_LENGTH="101")
        assert answer.status_line == "413 Request Entity Too Large" and not answer.by_django
        assert answer.json() == {"detail": "request body exceeds 100-byte limit"}
        assert "X-Request-ID" in answer.headers and "X-RateLimit-Limit" in answer.headers

    def test_invalid_content_length_is_400(self, device):
        for value in ("lots", "-5"):
            answer = post(device, stream=BrokenInput(), CONTENT_LENGTH=value)
            assert (answer.status, answer.json()) == (400, {"detail": "invalid Content-Length"})
        assert not Point.objects.exists()

    def test_errors_are_the_django_views_answers(self, device, organization):
        """Byte for byte what the Django fast view answers (the test client goes through it)."""
        other = make_device(organization)
        bad_doc = document()
        bad_doc["resources"]["load"] = [0.1]
        cases = [
            ({"key": other.key}, orjson.dumps(document())),
            ({"key": device.key}, b"[1, 2"),
            ({"key": device.key}, orjson.dumps(bad_doc)),
            ({"key": device.key, "time": "yesterday"}, orjson.dumps(document())),
        ]
        for params, body in cases:
            query = "&".join(f"{name}={value}" for name, value in params.items())
            by_view = Client().post(
                f"{url(device)}?{query}", body, content_type="application/json", HTTP_X_REQUEST_ID="same"
            )
            below = call(url(device), query, body, HTTP_X_REQUEST_ID="same")
            assert not below.by_django
            assert (below.status, below.body) == (by_view.status_code, by_view.content)
            assert below.headers["Content-Type"] == by_view["Content-Type"]
            assert [name for name, _ in below.header_list] == list(by_view.headers)

    def test_a_full_spool_is_503_with_retry_after_as_the_django_view(self, device, monkeypatch, tmp_path):
        monkeypatch.setattr(ingest, "_spool", SpoolAppender(tmp_path, max_lag_bytes=1, wait_seconds=0.05))
        assert post(device).status == 200  # the first line fits; the writer never moves, so the next waits
        query, body = f"key={device.key}", orjson.dumps(document())
        below = call(url(device), query, body, HTTP_X_REQUEST_ID="same")
        by_view = Client().post(
            f"{url(device)}?{query}", body, content_type="application/json", HTTP_X_REQUEST_ID="same"
        )
        assert_envelope(below, 503)
        assert below.headers["Retry-After"] == by_view["Retry-After"] == "10"
        assert (below.status, below.body) == (by_view.status_code, by_view.content)

    def test_unexpected_error_is_a_logged_500_envelope(self, device, monkeypatch, caplog):
        def broken(**kwargs):
            raise RuntimeError("storage exploded")

        monkeypatch.setattr(ingest, "ingest", broken)
        answer = post(device, HTTP_X_REQUEST_ID="req-500")
        assert answer.status_line == "500 Internal Server Error" and not answer.by_django
        assert answer.json() == {
            "error": {"code": 500, "message": "Internal server error", "request_id": "ext-req-500"}
        }
        assert answer.headers["X-Request-ID"] == "req-500" and "X-RateLimit-Remaining" in answer.headers
        logged = [record for record in caplog.records if record.levelno == logging.ERROR]
        assert logged and logged[0].exc_info[0] is RuntimeError


class TestRequestContext:
    def test_request_id_is_echoed_or_generated(self, device):
        assert post(device, HTTP_X_REQUEST_ID="agent-7_a").headers["X-Request-ID"] == "agent-7_a"
        replaced = post(device, body=b"{", HTTP_X_REQUEST_ID="not valid!")
        generated = replaced.headers["X-Request-ID"]
        assert GENERATED_ID.match(generated)
        assert replaced.json()["error"]["request_id"] == generated

    def test_one_access_log_line_carrying_the_request_id(self, device, caplog):
        caplog.handler.addFilter(RequestIdFilter())  # as the console handler has it
        with caplog.at_level(logging.INFO, logger="netfleet.request"):
            answer = call(url(device, slash=False), f"key={device.key}", orjson.dumps(document()),
                          HTTP_X_REQUEST_ID="logged")  # fmt: skip
        assert answer.status == 200
        lines = [record for record in caplog.records if record.name == "netfleet.request"]
        assert len(lines) == 1
        line = lines[0]
        assert (line.method, line.path, line.status, line.remote_addr) == ("POST", url(device), 200, "192.0.2.1")
        assert line.request_id == "ext-logged" and line.duration_ms >= 0

    def test_the_request_id_is_current_while_storing(self, device, monkeypatch):
        from netfleet.core.logging import current_request_id

        seen, store = [], ingest.ingest

        def recording(**kwargs):
            seen.append(current_request_id.get())
            return store(**kwargs)

        monkeypatch.setattr(ingest, "ingest", recording)
        assert post(device, HTTP_X_REQUEST_ID="ctx").status == 200
        assert seen == ["ext-ctx"] and current_request_id.get() is None  # reset after the request

    def test_an_expired_database_connection_is_closed_at_the_end(self, device):
        connection.ensure_connection()
        connection.close_at = time.monotonic() - 1  # CONN_MAX_AGE has passed, as request_finished checks
        assert post(device).status == 200
        assert connection.connection is None
        assert Point.objects.filter(device=device).exists()  # reconnects


class TestRateLimit:
    @override_settings(NETFLEET_RATELIMIT_BURST=(2, 1), NETFLEET_RATELIMIT_API=(100, 60))
    def test_429_identical_to_the_middlewares(self, device, organization, clock):
        below = [post(device, at=None, HTTP_X_REQUEST_ID="rl") for _ in range(3)]
        assert [a.status for a in below] == [200, 200, 429]
        assert [(a.headers["X-RateLimit-Limit"], a.headers["X-RateLimit-Remaining"]) for a in below] == [
            ("2", "1"),
            ("2", "0"),
            ("2", "0"),
        ]
        refused = below[2]
        assert int(refused.headers["Retry-After"]) >= 1 and not refused.by_django
        assert refused.json() == {"error": {"code": 429, "message": "Rate limit exceeded", "request_id": "ext-rl"}}
        assert Point.objects.filter(device=device).count() > 0
        # the same sequence for another device through the Django middleware: the same answers
        other = make_device(organization)
        through_django = [
            Client().post(
                f"{url(other)}?key={other.key}", orjson.dumps(document(rx=100, tx=50)),
                content_type="application/json", HTTP_X_REQUEST_ID="rl",
            )
            for _ in range(3)
        ]  # fmt: skip
        assert [r.status_code for r in through_django] == [200, 200, 429]
        for mine, theirs in zip(below, through_django, strict=True):
            assert mine.header_list == list(theirs.headers.items())
            assert mine.body == theirs.content

    @override_settings(NETFLEET_RATELIMIT_BURST=(2, 1), NETFLEET_RATELIMIT_API=None)
    def test_a_device_shares_its_bucket_with_the_django_path_and_no_other(self, device, organization, clock):
        path = f"{url(device, dashed=False)}?key={device.key}"
        for _ in range(2):  # through the middleware
            assert Client().post(path, orjson.dumps(document()), content_type="application/json").status_code == 200
        refused = post(device, at=None)
        assert refused.status == 429
        other = make_device(organization)
        assert post(other, at=None).status == 200  # every device its own bucket, whatever the address
        clock.shift(int(refused.headers["Retry-After"]))
        assert post(device, at=None).status == 200  # the refused request used nothing up

    @override_settings(NETFLEET_RATELIMIT_ENABLED=False)
    def test_limits_off(self, device):
        answer = post(device)
        assert answer.status == 200
        assert "X-RateLimit-Limit" not in answer.headers and "X-RateLimit-Remaining" not in answer.headers

    @unreachable_ratelimit_store
    def test_unreachable_store_lets_the_document_through(self, device, caplog):
        answer = post(device)  # nothing listens on the discard port
        assert answer.status == 200 and "X-RateLimit-Limit" not in answer.headers
        assert Point.objects.filter(device=device).exists()
        assert any(record.name == "netfleet.ratelimit" for record in caplog.records)


class TestLeftToDjango:
    def test_get_is_the_chart_view(self, device):
        post(device)
        answer = call(url(device), f"key={device.key}&start=2024-03-01 10:00:00&end=2024-03-01 11:00:00",
                      method="GET")  # fmt: skip
        assert answer.by_django and answer.status == 200
        assert answer.json()["id"] == str(device.pk) and answer.json()["charts"]

    def test_post_without_a_key(self, device):
        answer = call(url(device), "", orjson.dumps(document()), HTTP_X_REQUEST_ID="nokey")
        assert answer.by_django
        error = assert_envelope(answer, 401, request_id="ext-nokey")
        assert error["message"] == "The device key (?key=) or a login is required"
        assert not Point.objects.exists()

    @override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=2)
    def test_too_many_query_fields(self, device):
        answer = call(url(device), f"key={device.key}&a=1&b=2", orjson.dumps(document()))
        assert answer.by_django and answer.status == 400
        assert not Point.objects.exists()

    def test_empty_key_other_methods_other_paths_and_hosts(self, device):
        body = orjson.dumps(document())
        empty_key = call(url(device), "key=", body)
        assert empty_key.by_django and empty_key.status == 403  # the view: wrong key
        put = call(url(device), f"key={device.key}", body, method="PUT")
        assert put.by_django and put.status in (401, 405)
        garbage = call("/api/v1/monitoring/device/not-a-device/", f"key={device.key}", body)
        assert garbage.by_django and garbage.status == 404
        nearby = call(f"{url(device)}nearby-devices/", f"key={device.key}", body)
        assert nearby.by_django
        evil = call(url(device), f"key={device.key}", body, HTTP_HOST="evil.example")
        assert evil.by_django and evil.status == 400
        assert not Point.objects.exists()
