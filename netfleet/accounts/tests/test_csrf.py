"""Cookie sessions for browsers and the double-submit CSRF check."""

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from netfleet.accounts.factories import TEST_PASSWORD, SiteFactory
from netfleet.accounts.roles import Role

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_rate_limits_off")]


@pytest.fixture
def _rate_limits_off():
    with override_settings(NETFLEET_RATELIMIT_ENABLED=False):
        yield


@pytest.fixture
def browser(make_user, organization):
    """A client logged in through /auth/login, carrying only the cookies it set (as a browser would)."""
    user = make_user(role=Role.ORG_ADMIN, organization=organization)
    client = APIClient()
    response = client.post("/api/v1/auth/login", {"login": user.username, "password": TEST_PASSWORD}, format="json")
    assert response.status_code == 200
    access = response.cookies[settings.NETFLEET_ACCESS_COOKIE]
    assert access["httponly"] and access["path"] == "/"
    assert not response.cookies[settings.NETFLEET_CSRF_COOKIE]["httponly"]
    client.csrf_value = response.cookies[settings.NETFLEET_CSRF_COOKIE].value
    client.bearer = response.json()["access_token"]
    return client


def site_payload(organization, slug="branch"):
    return {"organization_id": str(organization.pk), "name": "Branch", "slug": slug}


def test_cookie_authenticates_reads(browser, organization):
    SiteFactory(organization=organization)
    assert browser.get("/api/v1/sites/").json()["total"] == 1


def test_mutation_with_cookie_and_without_header_is_403(browser, organization):
    response = browser.post("/api/v1/sites/", site_payload(organization), format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]["message"]


def test_mutation_with_wrong_header_is_403(browser, organization):
    response = browser.post("/api/v1/sites/", site_payload(organization), format="json", HTTP_X_CSRF_TOKEN="nope")
    assert response.status_code == 403


def test_mutation_with_header_is_allowed(browser, organization):
    response = browser.post(
        "/api/v1/sites/", site_payload(organization), format="json", HTTP_X_CSRF_TOKEN=browser.csrf_value
    )
    assert response.status_code == 201, response.content


def test_cookie_plus_bearer_still_needs_the_header(browser, organization):
    browser.credentials(HTTP_AUTHORIZATION=f"Bearer {browser.bearer}")
    assert browser.post("/api/v1/sites/", site_payload(organization), format="json").status_code == 403


def test_bearer_without_cookie_needs_no_csrf(browser, organization):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {browser.bearer}")
    assert client.post("/api/v1/sites/", site_payload(organization), format="json").status_code == 201


@pytest.mark.parametrize(
    "path",
    ["/api/v1/auth/login", "/api/v1/auth/refresh/", "/api/v1/auth/login/mfa", "/api/v1/auth/password/reset"],
)
def test_exempt_paths_skip_the_check(browser, path):
    # they answer for their own reasons (401/404/422), never the CSRF 403
    response = browser.post(path, {}, format="json")
    assert response.status_code != 403


def test_refresh_from_the_cookie(browser):
    response = browser.post("/api/v1/auth/refresh", {}, format="json")
    assert response.status_code == 200 and response.cookies[settings.NETFLEET_ACCESS_COOKIE].value


def test_logout_clears_cookies_and_needs_csrf(browser):
    assert browser.post("/api/v1/auth/logout").status_code == 403
    response = browser.post("/api/v1/auth/logout", HTTP_X_CSRF_TOKEN=browser.csrf_value)
    assert response.status_code == 204
    assert response.cookies[settings.NETFLEET_ACCESS_COOKIE].value == ""
    assert browser.get("/api/v1/sites/").status_code == 401
