"""Per-caller rate limits for the API faces: a sliding-window counter in Django's cache.

The caller is the user of a valid access JWT (Bearer header, else the browser's access cookie), else the prefix of
an `X-API-Key`, else the client IP (an IPv6 client by its /64). Counters live in the cache (`NETFLEET_RATELIMIT_CACHE`)
and change only through `cache.add` + `cache.incr` (on Redis the same commands in one round trip), so with Redis every
worker on every host shares them.

Sliding-window counter: a window of `period` seconds is counted in a fixed-window key; a request is estimated as
`previous window's count x the share of it still inside the sliding window + this window's count` and refused when
that exceeds the limit. Refused requests are taken back out, so a client that waits Retry-After gets through.
"""

import contextlib
import hashlib
import ipaddress
import logging
import math
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from netfleet.core.api.exceptions import json_error

from .tokens import decode_access_token

logger = logging.getLogger("netfleet.ratelimit")

LIMITED_PREFIXES = ("/api/", "/routers/", "/users/")
AUTH_PREFIXES = ("/api/v1/auth/", "/users/login/", "/users/api-key-login/")
# Device-facing endpoints authenticated by the device key (`?key=`): counted per device, not per address.
DEVICE_KEY_PREFIXES = ("/api/v1/monitoring/device/",)
# Load balancer probes (paths are seen after PathNormalizerMiddleware added the trailing slash).
EXEMPT = frozenset({("GET", "/api/v1/health/"), ("HEAD", "/api/v1/health/")})

MESSAGE = "Rate limit exceeded"
KEY_PREFIX = "ratelimit"
_SAFE_IDENTITY = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
_EPSILON = 1e-9  # float noise must not refuse a client that waited exactly Retry-After


def now():
    """The clock (seconds since the epoch); tests move it with time_machine."""
    return time.time()


@dataclass(frozen=True)
class Bucket:
    name: str
    limit: int
    period: int


@dataclass
class Outcome:
    bucket: Bucket
    remaining: int
    retry_after: int | None  # set when the request is refused


@dataclass(frozen=True)
class Verdict:
    """What the limiter decided for one request: refused or not, and the bucket its headers report (the worst
    refusing bucket, else the tightest one)."""

    outcome: Outcome
    refused: bool

    @property
    def headers(self):
        """X-RateLimit-Limit, X-RateLimit-Remaining and, for a refused request, Retry-After."""
        headers = [
            ("X-RateLimit-Limit", str(self.outcome.bucket.limit)),
            ("X-RateLimit-Remaining", str(self.outcome.remaining)),
        ]
        if self.refused:
            headers.append(("Retry-After", str(self.outcome.retry_after)))
        return headers


def buckets_for(method, path):
    """The buckets a request (its method and routed path, trailing slash added) is counted in, or () when the
    path is not limited (read from settings per call)."""
    if not settings.NETFLEET_RATELIMIT_ENABLED or not path.startswith(LIMITED_PREFIXES):
        return ()
    if (method, path) in EXEMPT:
        return ()
    if path.startswith(AUTH_PREFIXES):
        rates = [("auth", settings.NETFLEET_RATELIMIT_AUTH)]
    else:
        rates = [("burst", settings.NETFLEET_RATELIMIT_BURST), ("api", settings.NETFLEET_RATELIMIT_API)]
    return tuple(Bucket(name, int(rate[0]), int(rate[1])) for name, rate in rates if rate)


def _user_from_jwt(raw, request):
    try:
        user_id = decode_access_token(raw, request).get(jwt_settings.USER_ID_CLAIM)
    except TokenError:
        return None
    return f"user:{user_id}" if user_id is not None else None


def client_address(request):
    """REMOTE_ADDR, with an IPv6 address widened to its /64 (one host usually owns the whole /64)."""
    raw = request.META.get("REMOTE_ADDR") or ""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def device_identity(path, key):
    """`device:<id as in the path>` for a device calling a device-key endpoint with its (non-empty) key, else None:
    each device is its own caller, so a fleet behind one NAT address is not throttled as a single caller (the key
    itself is checked by the view)."""
    if not key:
        return None
    for prefix in DEVICE_KEY_PREFIXES:
        if path.startswith(prefix):
            return f"device:{path[len(prefix) :].split('/', 1)[0]}"
    return None


def caller_identity(request, *, trust_api_key=True):
    """`device:<id>` for a device with its key (device_identity), `user:<sub>` for a valid access JWT,
    `key:<prefix>` for an X-API-Key, else `ip:<address>`. No DB query: the JWT is checked by its signature, the
    API key not at all (the authentication class does that later)."""
    if request.path_info.startswith(DEVICE_KEY_PREFIXES):  # the query is read only there
        identity = device_identity(request.path_info, request.GET.get("key"))
        if identity:
            return identity
    header = request.META.get("HTTP_AUTHORIZATION", "").split()
    if len(header) == 2 and header[0].lower() == "bearer":
        identity = _user_from_jwt(header[1], request)
        if identity:
            return identity
    if trust_api_key:
        prefix, dot, _ = request.META.get("HTTP_X_API_KEY", "").strip().partition(".")
        if dot and prefix:
            return f"key:{prefix}"
    cookie = request.COOKIES.get(getattr(settings, "NETFLEET_ACCESS_COOKIE", "netfleet_access"))
    if cookie:
        identity = _user_from_jwt(cookie, request)
        if identity:
            return identity
    return f"ip:{client_address(request)}"


def cache_key(bucket, identity, window):
    if not _SAFE_IDENTITY.match(identity):
        kind, _, value = identity.partition(":")
        identity = f"{kind}:h{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"
    return f"{KEY_PREFIX}:{bucket.name}:{bucket.period}:{identity}:{window}"


def _increment(cache, key, timeout):
    cache.add(key, 0, timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired or evicted between add and incr
        cache.add(key, 0, timeout)
        return cache.incr(key)


def _counts(cache, previous_keys, current_keys):
    """The previous windows' counts, and this request counted in the current windows (`current_keys`: (key, timeout)
    pairs): through the generic cache API, so any backend works."""
    previous = cache.get_many(previous_keys)
    return (
        [int(previous.get(key) or 0) for key in previous_keys],
        [_increment(cache, key, timeout) for key, timeout in current_keys],
    )


def _redis_counts(cache, previous_keys, current_keys):
    """_counts in one round trip: the commands of get_many, add and incr, on Django's final keys, in one pipeline."""
    store_key = cache.make_and_validate_key  # KEY_PREFIX and version, as RedisCache does: both paths share counters
    # MULTI/EXEC (still one round trip) so no counter can expire between its SET NX and INCR and lose its timeout
    pipeline = cache._cache.get_client(store_key(current_keys[0][0]), write=True).pipeline(transaction=True)
    pipeline.mget([store_key(key) for key in previous_keys])
    for key, timeout in current_keys:
        key = store_key(key)
        # RedisCache.add: a plain integer (as its serializer stores ints), so INCR works and get_many reads it back
        pipeline.set(key, 0, ex=cache.get_backend_timeout(timeout), nx=True)
        pipeline.incr(key)
    previous, *replies = pipeline.execute()
    return [int(count or 0) for count in previous], replies[1::2]


def _retry_after(bucket, previous, count, elapsed):
    """Seconds until a request would fit, if nothing else arrives. `count` includes the refused request."""
    limit, period = bucket.limit, bucket.period
    if count <= limit:
        # still this window, once the previous window's weight has decayed: previous * (1 - f) + count <= limit
        wait = (1 - (limit - count) / previous) * period - elapsed
    else:
        # the next window, where this one is the previous: (count - 1) * (1 - g) + 1 <= limit
        wait = (period - elapsed) + (1 - (limit - 1) / (count - 1)) * period
    return max(1, math.ceil(wait - _EPSILON))


def hit(buckets, identity, *, cache=None):
    """Count one request in every bucket; returns one Outcome per bucket. If any bucket refuses it, the request
    is taken back out of all of them (a refused request uses up nothing)."""
    cache = cache or caches[settings.NETFLEET_RATELIMIT_CACHE]
    moment = now()
    windows = []
    for bucket in buckets:
        window = int(moment // bucket.period)
        windows.append((window, (moment - window * bucket.period) / bucket.period))
    previous_keys = [cache_key(b, identity, w - 1) for b, (w, _) in zip(buckets, windows, strict=True)]
    current_keys = [(cache_key(b, identity, w), 2 * b.period + 1) for b, (w, _) in zip(buckets, windows, strict=True)]
    counts = _redis_counts if isinstance(cache, RedisCache) else _counts
    previous_counts, current_counts = counts(cache, previous_keys, current_keys)

    outcomes = []
    for bucket, (_, fraction), previous, count in zip(buckets, windows, previous_counts, current_counts, strict=True):
        estimate = previous * (1 - fraction) + count
        if estimate > bucket.limit + _EPSILON:
            retry = _retry_after(bucket, previous, count, fraction * bucket.period)
            outcomes.append(Outcome(bucket, 0, retry))
        else:
            outcomes.append(Outcome(bucket, max(0, math.floor(bucket.limit - estimate + _EPSILON)), None))

    if any(outcome.retry_after for outcome in outcomes):
        for key, _ in current_keys:
            with contextlib.suppress(ValueError):  # expired meanwhile: nothing left to take back
                cache.decr(key)
    return outcomes


def limit(method, path, identify):
    """Count a request to `path` (routed, trailing slash added) in its buckets: a Verdict, or None when the path is
    not limited or the store cannot be reached (logged; the request passes unlimited: an outage of the cache must
    not take the API down). `identify(buckets)` names the caller; it is called only for a limited path.

    The one implementation behind RateLimitMiddleware and the answers given below Django (monitoring ingest)."""
    buckets = buckets_for(method, path)
    if not buckets:
        return None
    identity = identify(buckets)
    try:
        outcomes = hit(buckets, identity)
    except Exception:
        logger.warning("rate limit store unavailable; request not limited", exc_info=True)
        return None
    refused = [outcome for outcome in outcomes if outcome.retry_after]
    if refused:
        return Verdict(max(refused, key=lambda outcome: outcome.retry_after), refused=True)
    return Verdict(min(outcomes, key=lambda outcome: (outcome.remaining, outcome.bucket.limit)), refused=False)


class RateLimitMiddleware:
    """Refuses a caller over its limit with a 429 (Retry-After, the API error shape) before any view runs, and
    reports the tightest bucket in X-RateLimit-Limit / X-RateLimit-Remaining on every limited response.

    If the cache cannot be reached, requests pass unlimited (logged): an outage of Redis must not take the API down.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        verdict = limit(request.method, request.path_info, lambda buckets: self.identify(request, buckets))
        if verdict is None:
            return self.get_response(request)
        response = json_error(request, 429, MESSAGE) if verdict.refused else self.get_response(request)
        for name, value in verdict.headers:
            response[name] = value
        return response

    @staticmethod
    def identify(request, buckets):
        # an unverified API key prefix must not buy a fresh bucket on the login endpoints
        return caller_identity(request, trust_api_key=buckets[0].name != "auth")
