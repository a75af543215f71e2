"""pytest fixtures shared by every app: organizations, users with a role, authenticated API clients and
the embedded server process. Loaded for the whole suite through `-p netfleet.testing.fixtures`."""

import os

import pytest
from rest_framework.test import APIClient

from netfleet.accounts import services
from netfleet.accounts.factories import MembershipFactory, OrganizationFactory, UserFactory
from netfleet.accounts.roles import Role


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
