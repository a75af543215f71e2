"""Rate limits over HTTP through the real middleware stack; time is moved with time_machine, never slept."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from unittest import mock

import httpx
import pytest
import redis
import time_machine
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.http import JsonResponse
from django.test import override_settings
from django.urls import include, path
from rest_framework_simplejwt.tokens import AccessToken

from netfleet.accounts.ratelimit import Bucket, cache_key, hit, limit
from netfleet.accounts.roles import Role
from netfleet.testing.fixtures import unreachable_ratelimit_store
from netfleet.testing.live import EmbeddedInstance

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

LOGIN = "/api/v1/auth/login"
CREDENTIALS = {"login": "nobody@example.com", "password": "not-the-password"}

# Test routes: a view that records every call, so a test can prove a refused request never reached it.
calls = []


def counting_view(request):
    calls.append(request.path)
    return JsonResponse({"ok": True})


urlpatterns = [
    path("api/v1/test/counted/", counting_view),
    path("routers/test/counted/", counting_view),
    path("", include("netfleet.urls")),
]
handler404 = "netfleet.core.views.page_not_found"
handler500 = "netfleet.core.views.server_error"


@pytest.fixture(autouse=True)
def _no_calls():
    calls.clear()


@pytest.fixture
def clock():
    """Frozen at the start of a minute (near real time, so access tokens minted by fixtures stay valid)."""
    start = datetime.fromtimestamp((int(time.time()) // 60 + 1) * 60, tz=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller


def login(client, **extra):
    return client.post(LOGIN, CREDENTIALS, format="json", **extra)


def limit_headers(response):
    return int(response["X-RateLimit-Limit"]), int(response["X-RateLimit-Remaining"])


def assert_refused(response, *, limit=None):
    assert response.status_code == 429, response.content
    assert response["Content-Type"].startswith("application/json")
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    assert response["X-RateLimit-Remaining"] == "0"
    if limit is not None:
        assert response["X-RateLimit-Limit"] == str(limit)
    return retry_after


def assert_envelope(response):
    error = response.json()["error"]
    assert set(error) == {"code", "message", "request_id"}
    assert (error["code"], error["message"]) == (429, "Rate limit exceeded")
    assert error["request_id"] == response["X-Request-ID"]


class TestAuthBucket:
    def test_remaining_counts_down_then_429_with_envelope(self, api_client, clock):
        remaining = []
        for _ in range(5):
            response = login(api_client)
            assert response.status_code != 429
            remaining.append(limit_headers(response))
        assert remaining == [(5, 4), (5, 3), (5, 2), (5, 1), (5, 0)]
        response = login(api_client)
        assert_refused(response, limit=5)
        assert_envelope(response)

    def test_refused_request_never_reaches_the_view(self, api_client, clock):
        with override_settings(NETFLEET_RATELIMIT_API=(2, 60), NETFLEET_RATELIMIT_BURST=None):
            responses = [api_client.get("/api/v1/test/counted/") for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 429]
        assert len(calls) == 2

    def test_allowed_again_when_the_window_has_slid_past(self, api_client, clock):
        for _ in range(5):
            login(api_client)
        retry_after = assert_refused(login(api_client))
        # 5 in the last window, none since: the 6th fits once 5 * (1 - f) + 1 <= 5, at f = 0.2 of the next one
        assert retry_after == 60 + 12
        clock.shift(retry_after - 1)
        assert_refused(login(api_client))
        clock.shift(1)
        assert login(api_client).status_code != 429
        clock.shift(120)  # two whole windows later nothing is left
        assert limit_headers(login(api_client)) == (5, 4)

    def test_refused_requests_do_not_count(self, api_client, clock):
        for _ in range(5):
            login(api_client)
        for _ in range(20):
            assert_refused(login(api_client))
        clock.shift(72)
        assert login(api_client).status_code != 429

    def test_login_faces_of_the_routers_api_share_the_auth_limit(self, api_client, clock):
        for _ in range(3):
            api_client.post("/users/login/", {"username": "x", "password": "y"}, format="json")
        for _ in range(2):
            api_client.post("/users/api-key-login/", {"public_key": "x", "private_key": "y"}, format="json")
        response = api_client.post("/users/login/", {"username": "x", "password": "y"}, format="json")
        assert_refused(response, limit=5)
        assert response.json() == {"error": "Rate limit exceeded"}  # the routers-api error shape

    def test_auth_bucket_is_separate_from_the_general_one(self, api_client, clock):
        for _ in range(5):
            login(api_client)
        assert_refused(login(api_client))
        response = api_client.get("/api/v1/sites/")
        assert response.status_code == 401 and limit_headers(response) == (120, 119)

    def test_unverified_api_key_prefixes_do_not_buy_fresh_login_attempts(self, api_client, clock):
        for n in range(5):
            assert login(api_client, HTTP_X_API_KEY=f"nfk_{n:012x}.secret").status_code != 429
        assert_refused(login(api_client, HTTP_X_API_KEY="nfk_ffffffffffff.secret"))


class TestCallers:
    @override_settings(NETFLEET_RATELIMIT_API=(3, 60), NETFLEET_RATELIMIT_BURST=None)
    def test_users_do_not_share_a_bucket(self, client_as, clock):
        alice, _ = client_as(Role.VIEWER)
        bob, _ = client_as(Role.VIEWER)
        for _ in range(3):
            assert alice.get("/api/v1/sites/").status_code != 429
        assert_refused(alice.get("/api/v1/sites/"), limit=3)
        assert limit_headers(bob.get("/api/v1/sites/")) == (3, 2)

    @override_settings(NETFLEET_RATELIMIT_API=(3, 60), NETFLEET_RATELIMIT_BURST=None)
    def test_a_user_does_not_share_the_bucket_of_their_ip(self, api_client, admin_client, clock):
        for _ in range(3):
            api_client.get("/api/v1/sites/")
        assert_refused(api_client.get("/api/v1/sites/"))
        assert admin_client.get("/api/v1/sites/").status_code != 429

    @override_settings(NETFLEET_RATELIMIT_API=(3, 60), NETFLEET_RATELIMIT_BURST=None)
    def test_the_browser_access_cookie_identifies_its_user(self, api_client, make_user, clock):
        for _ in range(3):
            api_client.get("/api/v1/sites/")
        assert_refused(api_client.get("/api/v1/sites/"))
        api_client.cookies[settings.NETFLEET_ACCESS_COOKIE] = str(AccessToken.for_user(make_user(role=None)))
        assert limit_headers(api_client.get("/api/v1/sites/")) == (3, 2)

    def test_anonymous_callers_are_counted_per_ip(self, api_client, clock):
        for _ in range(5):
            login(api_client, REMOTE_ADDR="192.0.2.1")
        assert_refused(login(api_client, REMOTE_ADDR="192.0.2.1"))
        assert limit_headers(login(api_client, REMOTE_ADDR="192.0.2.2")) == (5, 4)

    def test_ipv6_clients_are_counted_per_64(self, api_client, clock):
        for host in range(1, 6):
            login(api_client, REMOTE_ADDR=f"2001:db8::{host}")
        assert_refused(login(api_client, REMOTE_ADDR="2001:db8::ffff"))
        assert limit_headers(login(api_client, REMOTE_ADDR="2001:db8:0:1::1")) == (5, 4)

    def test_invalid_bearer_token_counts_as_its_ip(self, api_client, clock):
        for _ in range(5):
            login(api_client, HTTP_AUTHORIZATION="Bearer not-a-jwt")
        assert_refused(login(api_client))

    @override_settings(NETFLEET_RATELIMIT_API=(2, 60), NETFLEET_RATELIMIT_BURST=None)
    def test_api_keys_are_counted_per_prefix(self, api_client, clock):
        first = {"HTTP_X_API_KEY": "nfk_000000000001.one-secret"}
        for _ in range(2):
            api_client.get("/api/v1/sites/", **first)
        # the same prefix with another secret is the same caller
        assert_refused(api_client.get("/api/v1/sites/", HTTP_X_API_KEY="nfk_000000000001.other"))
        assert limit_headers(api_client.get("/api/v1/sites/", HTTP_X_API_KEY="nfk_000000000002.x")) == (2, 1)
        assert limit_headers(api_client.get("/api/v1/sites/")) == (2, 1)  # and the bare IP is yet another

    @override_settings(NETFLEET_RATELIMIT_API=(2, 60), NETFLEET_RATELIMIT_BURST=None)
    def test_long_or_odd_identifiers_are_hashed_into_one_bucket(self, api_client, clock):
        odd = {"HTTP_X_API_KEY": "ünïcode key " * 40 + ".secret"}
        for _ in range(2):
            assert api_client.get("/api/v1/sites/", **odd).status_code != 429
        assert_refused(api_client.get("/api/v1/sites/", **odd))

    def test_cache_keys_hold_no_raw_input(self):
        bucket = Bucket("api", 600, 60)
        assert cache_key(bucket, "user:42", 7) == "ratelimit:api:60:user:42:7"
        key = cache_key(bucket, "key:" + "ünïcode key\n" * 40, 7)
        assert len(key) < 80 and key.isascii() and " " not in key and "\n" not in key
        assert key == cache_key(bucket, "key:" + "ünïcode key\n" * 40, 7)


class TestGeneralAndBurst:
    def test_headers_report_the_tightest_bucket(self, admin_client, clock):
        # 600/minute and 120/second: after one request the second has the fewest left
        assert limit_headers(admin_client.get("/api/v1/sites/")) == (120, 119)
        assert limit_headers(admin_client.get("/api/v1/sites/")) == (120, 118)

    @override_settings(NETFLEET_RATELIMIT_API=(100, 60), NETFLEET_RATELIMIT_BURST=(3, 1))
    def test_burst(self, admin_client, clock):
        for _ in range(3):
            assert admin_client.get("/api/v1/sites/").status_code != 429
        response = admin_client.get("/api/v1/sites/")
        assert_refused(response, limit=3)
        assert_envelope(response)
        clock.shift(1)  # a second later the sliding window still holds all 3 of the last one
        assert_refused(admin_client.get("/api/v1/sites/"))
        clock.shift(1)
        assert admin_client.get("/api/v1/sites/").status_code != 429

    @override_settings(NETFLEET_RATELIMIT_API=(4, 60), NETFLEET_RATELIMIT_BURST=(100, 1))
    def test_burst_allowed_but_the_minute_still_holds(self, admin_client, clock):
        for _ in range(4):
            assert admin_client.get("/api/v1/sites/").status_code != 429
        assert_refused(admin_client.get("/api/v1/sites/"), limit=4)

    @override_settings(NETFLEET_RATELIMIT_API=(10, 60), NETFLEET_RATELIMIT_BURST=None)
    def test_previous_window_is_weighted_by_its_overlap(self, api_client, clock):
        clock.shift(50)
        for _ in range(10):
            assert api_client.get("/api/v1/sites/").status_code == 401
        clock.shift(40)  # half-way through the next window: half of the 10 still count
        assert limit_headers(api_client.get("/api/v1/sites/")) == (10, 4)
        for _ in range(4):
            assert api_client.get("/api/v1/sites/").status_code == 401
        retry_after = assert_refused(api_client.get("/api/v1/sites/"))
        assert retry_after == 6  # 10 * (1 - f) + 6 <= 10 once f reaches 0.6, 6 s from now

    def test_routers_face_uses_its_own_error_shape(self, api_client, clock):
        with override_settings(NETFLEET_RATELIMIT_API=(1, 60)):
            assert api_client.get("/routers/test/counted/").status_code == 200
            response = api_client.get("/routers/test/counted/")
        assert_refused(response, limit=1)
        assert response.json() == {"error": "Rate limit exceeded"}


class TestScope:
    @override_settings(NETFLEET_RATELIMIT_API=(1, 60), NETFLEET_RATELIMIT_BURST=(1, 1))
    def test_health_probes_are_exempt(self, api_client, clock):
        for _ in range(5):
            response = api_client.get("/api/v1/health")
            assert response.status_code == 200
            assert "X-RateLimit-Limit" not in response
        # only the probe: another method on the same path is counted
        assert limit_headers(api_client.delete("/api/v1/health")) == (1, 0)

    @override_settings(NETFLEET_RATELIMIT_API=(1, 60), NETFLEET_RATELIMIT_BURST=(1, 1))
    @pytest.mark.parametrize("url", ["/admin/login/", "/static/admin/css/base.css", "/no-such-page/"])
    def test_other_paths_are_not_limited(self, api_client, clock, url):
        for _ in range(3):
            response = api_client.get(url)
            assert response.status_code != 429
            assert "X-RateLimit-Limit" not in response

    @override_settings(NETFLEET_RATELIMIT_ENABLED=False)
    def test_limits_off(self, api_client, clock):
        for _ in range(10):
            response = login(api_client)
            assert response.status_code != 429
            assert "X-RateLimit-Limit" not in response

    @unreachable_ratelimit_store
    def test_unreachable_store_lets_requests_through(self, api_client, caplog):
        response = login(api_client)  # nothing listens on the discard port
        assert response.status_code != 429 and "X-RateLimit-Limit" not in response
        assert any(record.name == "netfleet.ratelimit" for record in caplog.records)


def test_concurrent_requests_never_overshoot(clock):
    """Admission rests on the atomic increment: 40 simultaneous callers, exactly `limit` get through."""
    bucket = Bucket("auth", 5, 60)
    start = threading.Barrier(40)

    def one_request():
        start.wait()
        return hit((bucket,), "ip:192.0.2.9")[0].retry_after is None

    with ThreadPoolExecutor(max_workers=40) as pool:
        admitted = list(pool.map(lambda _: one_request(), range(40)))
    assert admitted.count(True) == 5
    assert hit((bucket,), "ip:192.0.2.9")[0].retry_after == 72  # the refused ones were taken back out


@pytest.fixture
def redis_cache():
    """The suite's default cache, Redis as in production: these tests need the real server's answers."""
    store = caches["default"]
    if not isinstance(store, RedisCache):
        (pytest.fail if os.environ.get("CI") else pytest.skip)("needs the suite's Redis server (`make test`)")
    return store


class TestRedisStore:
    BUCKETS = (Bucket("burst", 3, 1), Bucket("api", 5, 60))

    def test_a_request_costs_one_round_trip(self, redis_cache, clock):
        redis_cache.get("warm-up")  # the pooled connection and its handshake, before counting
        connection = redis.connection.AbstractConnection
        # every round trip sends its packed commands once, then reads their replies
        with mock.patch.object(
            connection, "send_packed_command", autospec=True, side_effect=connection.send_packed_command
        ) as sends:
            outcomes = hit(self.BUCKETS, "ip:192.0.2.10", cache=redis_cache)
        assert sends.call_count == 1
        assert [outcome.remaining for outcome in outcomes] == [2, 4]

    def test_redis_and_generic_paths_agree(self, redis_cache, clock):
        """The same requests give the same outcomes on Redis (one pipeline) and through the generic cache API, and
        the pipeline's counters are the generic API's: its take-back (cache.decr) and get find them."""
        generic_cache = LocMemCache("ratelimit-generic-path", {})
        generic_cache.clear()
        start = datetime.now(tz=UTC)
        # seconds after the start: the burst bucket refuses from the 4th request, the minute one from the 10th
        moments = [0, 0, 0, 0, 0.5, 1.2, 2, 2, 2.5, 3.9]

        def requests(cache):
            outcomes = []
            for moment in moments:
                clock.move_to(start + timedelta(seconds=moment))
                outcomes.append(hit(self.BUCKETS, "ip:192.0.2.11", cache=cache))
            return outcomes

        on_redis = requests(redis_cache)
        assert on_redis == requests(generic_cache)
        refused = [(outcome.bucket.name, outcome.retry_after) for each in on_redis for outcome in each]
        assert ("burst", 2) in refused and ("api", 70) in refused
        assert on_redis[7][1].remaining == 0  # the 8th is the 5th of the minute: refused ones were taken back
        keys = [cache_key(bucket, "ip:192.0.2.11", int(time.time() // bucket.period)) for bucket in self.BUCKETS]
        assert [redis_cache.get(key) for key in keys] == [generic_cache.get(key) for key in keys] == [0, 5]
        client = redis_cache._cache.get_client()
        for bucket, key in zip(self.BUCKETS, keys, strict=True):
            assert 0 < client.ttl(redis_cache.make_key(key)) <= 2 * bucket.period + 1

    @unreachable_ratelimit_store
    def test_unreachable_redis_lets_the_request_through(self, caplog):
        pipeline = redis.client.Pipeline
        with mock.patch.object(pipeline, "execute", autospec=True, side_effect=pipeline.execute) as execute:
            assert limit("POST", f"{LOGIN}/", lambda buckets: "ip:192.0.2.12") is None
        assert execute.call_count == 1  # tried through the one-round-trip path
        logged = [record for record in caplog.records if record.name == "netfleet.ratelimit"]
        assert logged and isinstance(logged[0].exc_info[1], redis.ConnectionError)


class TestRateSetting:
    @pytest.mark.parametrize(
        ("value", "rate"),
        [("5/60", (5, 60)), ("120/1", (120, 1)), ("600/1m", (600, 60)), ("5/minute", (5, 60)), ("10/2h", (10, 7200))],
    )
    def test_parsed(self, monkeypatch, value, rate):
        from netfleet.settings import env_rate

        monkeypatch.setenv("NETFLEET_RATELIMIT_TEST", value)
        assert env_rate("NETFLEET_RATELIMIT_TEST", "1/1") == rate

    def test_default_and_off(self, monkeypatch):
        from netfleet.settings import env_rate

        monkeypatch.delenv("NETFLEET_RATELIMIT_TEST", raising=False)
        assert env_rate("NETFLEET_RATELIMIT_TEST", "5/60") == (5, 60)
        monkeypatch.setenv("NETFLEET_RATELIMIT_TEST", "off")
        assert env_rate("NETFLEET_RATELIMIT_TEST", "5/60") is None

    @pytest.mark.parametrize("value", ["5", "0/60", "5/0", "x/60", "5/1d", "-1/60"])
    def test_refused(self, monkeypatch, value):
        from django.core.exceptions import ImproperlyConfigured

        from netfleet.settings import env_rate

        monkeypatch.setenv("NETFLEET_RATELIMIT_TEST", value)
        with pytest.raises(ImproperlyConfigured):
            env_rate("NETFLEET_RATELIMIT_TEST", "5/60")


@pytest.mark.live
def test_limit_is_shared_by_two_instances_through_redis(test_redis_url):
    cache_url = test_redis_url.rsplit("/", 1)[0] + "/5"  # a database no other test uses
    store = redis.Redis.from_url(cache_url)
    store.flushdb()
    env = {"CACHE_URL": cache_url, "NETFLEET_RATELIMIT_AUTH": "5/60"}
    instances = []
    try:
        for _ in range(2):
            instances.append(EmbeddedInstance(extra_env=env, serve_args=["--no-celery"]).start())
        statuses, last = [], None
        for n in range(6):
            base_url = instances[n % 2].base_url
            last = httpx.post(f"{base_url}{LOGIN}", json=CREDENTIALS, headers={"X-Request-ID": f"rl-{n}"}, timeout=30)
            statuses.append(last.status_code)
            if n < 5:
                assert last.headers["x-ratelimit-remaining"] == str(4 - n), instances[n % 2].log()
        assert 429 not in statuses[:5] and statuses[5] == 429, statuses
        assert int(last.headers["retry-after"]) >= 1
        assert last.json() == {"error": {"code": 429, "message": "Rate limit exceeded", "request_id": "ext-rl-5"}}
        assert any(key.startswith(b"netfleet:1:ratelimit:auth:") for key in store.scan_iter())
    finally:
        for instance in instances:
            instance.stop()
        store.flushdb()
        store.close()


@override_settings(NETFLEET_RATELIMIT_BURST=(2, 1))
def test_devices_behind_one_address_have_their_own_buckets(api_client):
    """Monitoring agents post with their device key: each device is its own caller, not their shared NAT IP."""
    for device in ("a" * 32, "b" * 32):
        for _ in range(2):
            response = api_client.post(f"/api/v1/monitoring/device/{device}/?key=x", {}, format="json")
            assert response.status_code != 429
    third = api_client.post(f"/api/v1/monitoring/device/{'a' * 32}/?key=x", {}, format="json")
    assert third.status_code == 429
