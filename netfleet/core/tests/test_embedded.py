"""The embedded instance of `make run`, started as a real process tree and used over real sockets."""

import os
import socket

import httpx
import pytest
from websockets.sync.client import connect

from netfleet.testing.live import EmbeddedInstance

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def instance():
    embedded = EmbeddedInstance().start()
    yield embedded
    embedded.stop()


def children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def test_health(instance):
    response = httpx.get(f"{instance.base_url}/api/v1/health")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}
    assert response.headers["x-request-id"]


def test_login_less_requests_get_401_envelopes(instance):
    response = httpx.get(f"{instance.base_url}/api/v1/sites", headers={"X-Request-ID": "smoke-1"})
    assert response.status_code == 401
    assert response.json()["error"]["request_id"] == "ext-smoke-1"
    assert response.headers["x-request-id"] == "smoke-1"


def test_unknown_route_is_404_envelope(instance):
    response = httpx.post(f"{instance.base_url}/api/v1/nowhere", json={})
    assert response.status_code == 404 and response.json()["error"]["code"] == 404


def test_docs_and_their_assets(instance):
    with httpx.Client(base_url=instance.base_url) as client:
        assert client.get("/api/v1/openapi.json").json()["openapi"].startswith("3.1")
        page = client.get("/api/v1/docs/")
        assert page.status_code == 200
        asset = next(part.split('"')[0] for part in page.text.split('src="')[1:] if part.startswith("/static/"))
        assert client.get(asset).status_code == 200
        assert client.get("/api/v1/redoc").status_code == 200


def test_oversized_body_is_refused_before_it_is_sent(instance):
    # Only the headers go out; the answer arrives without the server waiting for 2 MiB.
    with socket.create_connection(("127.0.0.1", instance.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/sites HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2097152\r\n\r\n"
        )
        reply = b""
        while not reply.endswith(b"0\r\n\r\n") and b'limit"}' not in reply:  # chunked or not
            part = sock.recv(65536)
            if not part:
                break
            reply += part
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413")
    assert '{"detail": "request body exceeds 1048576-byte limit"}' in reply


def test_websocket_listener(instance):
    with connect(f"ws://127.0.0.1:{instance.ws_port}/ws/v1/ping/", open_timeout=10) as ws:
        assert '"hello"' in ws.recv(timeout=10)
        ws.send('{"n": 1}')
        assert '"pong"' in ws.recv(timeout=10)


def test_bootstrap_is_idempotent_and_printed_a_password(instance):
    assert instance.admin_password and len(instance.admin_password) >= 16
    assert "already exists" in instance.manage("bootstrap").stdout


def test_serve_runs_all_parts_and_sigterm_stops_them():
    embedded = EmbeddedInstance().start()
    try:
        children = children_of(embedded.process.pid)
        commands = []
        for pid in children:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                commands.append(cmdline.read().replace(b"\0", b" ").decode())
        assert any("granian" in c for c in commands)
        assert any("uvicorn" in c for c in commands)
        assert any("celery" in c and " worker" in c for c in commands)
        assert any("celery" in c and " beat" in c for c in commands)
    finally:
        code = embedded.stop()
    assert code == 0
    assert not [pid for pid in children if is_running(pid)]


def is_running(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
