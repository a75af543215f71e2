"""pytest fixtures shared by every app: organizations, users with a role, authenticated API clients and
the embedded server process. Loaded for the whole suite through `-p netfleet.testing.fixtures`."""

import os

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from netfleet.accounts import services
from netfleet.accounts.factories import MembershipFactory, OrganizationFactory, UserFactory
from netfleet.accounts.roles import Role

# rate limits counted in a Redis nobody listens on (the discard port): the limiter's store is unreachable
unreachable_ratelimit_store = override_settings(
    CACHES={
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "limits": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"},
    },
    NETFLEET_RATELIMIT_CACHE="limits",
)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Every test starts with an empty cache (rate-limit windows, cached checksums...)."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def organization(db):
    return OrganizationFactory()


@pytest.fixture
def other_organization(db):
    return OrganizationFactory()


@pytest.fixture
def make_user(db):
    """make_user(role=None, organization=None, sites=(), superuser=False) -> User with that membership."""

    def make(role=Role.VIEWER, organization=None, sites=(), superuser=False, **fields):
        user = UserFactory(is_superuser=superuser, is_staff=superuser, **fields)
        if role is not None and organization is not None:
            membership = MembershipFactory(user=user, organization=organization, role=role)
            membership.sites.set(sites)
        return user

    return make


def bearer_client(user):
    """An APIClient logged in as `user` through a real session (its access token carries the session id)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {services.start_session(user=user).access_token}")
    return client


@pytest.fixture
def api_client():
    """An anonymous API client."""
    return APIClient()


@pytest.fixture
def client_for(db):
    """client_for(user) -> an APIClient sending that user's Bearer access token."""
    return bearer_client


@pytest.fixture
def client_as(make_user, organization):
    """client_as(role, organization=<the `organization` fixture>, sites=()) -> (APIClient, user)."""

    def make(role, org=None, sites=()):
        user = make_user(role=role, organization=org or organization, sites=sites)
        return bearer_client(user), user

    return make


@pytest.fixture
def admin_client(make_user):
    return bearer_client(make_user(role=None, superuser=True))


@pytest.fixture(scope="session")
def test_redis_url():
    url = os.environ.get("NETFLEET_TEST_REDIS_URL")
    if not url:
        # under CI a missing live server is a failure, never a silent skip
        (pytest.fail if os.environ.get("CI") else pytest.skip)("needs the suite's Redis server (`make test`)")
    return url


# --- gateways and hotspot (RouterOS simulator) -------------------------------------------------------------------


@pytest.fixture
def routeros_simulator():
    """A RouterOS REST simulator on a free loopback port (user `admin`, password `routeros-pw`), stopped after."""
    from netfleet.testing.routeros import RouterOSSimulator

    simulator = RouterOSSimulator(username="admin", password="routeros-pw").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def make_gateway(db, organization):
    """make_gateway(simulator=None, **fields) -> a MikroTik Gateway (pointing at the simulator when given)."""
    from netfleet.gateways.models import Gateway

    def make(simulator=None, **fields):
        values = {"organization": organization, "name": "Office Router", "host": "127.0.0.1", "port": 9,
                  "username": "admin", "password": "routeros-pw"}  # fmt: skip
        if simulator is not None:
            values.update(host=simulator.host, port=simulator.port, username=simulator.username,
                          password=simulator.password)  # fmt: skip
        values.update(fields)
        return Gateway.objects.create(**values)

    return make


# --- connections: a real sshd and a real Celery worker (netfleet/testing/sshd.py, celery_worker.py) ----------


@pytest.fixture(scope="session")
def sshd():
    """A real OpenSSH server on a loopback port (one per test session): `.port`, `.user`, `.password`,
    `.client_key`, `.home`, `.run_as_user(...)`."""
    from netfleet.testing.sshd import SSHD, SshServer

    if not os.path.exists(SSHD):
        (pytest.fail if os.environ.get("CI") else pytest.skip)("needs openssh-server (`make test` installs it)")
    server = SshServer().start()
    yield server
    server.stop()


@pytest.fixture
def celery_worker(transactional_db):
    """A real `celery worker` process on the suite's Redis broker and this test database. Use it from
    `django_db(transaction=True)` tests; it is stopped after the test."""
    from django.db import connection

    from netfleet.celery import app
    from netfleet.testing.celery_worker import CeleryWorker, database_url_for, isolated_broker_url, use_broker

    broker, database = os.environ.get("CELERY_BROKER_URL", ""), os.environ.get("DATABASE_URL", "")
    if not broker.startswith("redis") or not database.startswith("postgres"):
        (pytest.fail if os.environ.get("CI") else pytest.skip)("needs the suite's Redis and PostgreSQL (`make test`)")
    isolated = isolated_broker_url(broker)
    use_broker(app, isolated)
    worker = CeleryWorker(
        broker_url=isolated, database_url=database_url_for(database, connection.settings_dict["NAME"])
    )
    try:
        worker.start()
        yield worker
    finally:
        worker.stop()
        use_broker(app, broker)
