"""Login, MFA, refresh, logout, lockout, /auth/me and the /users/ login faces, over HTTP."""

from datetime import timedelta

import pyotp
import pytest
import time_machine
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from netfleet.accounts import tokens
from netfleet.accounts.factories import TEST_PASSWORD, SiteFactory
from netfleet.accounts.models import AuditAction, AuditEvent, RecoveryCode, RefreshToken
from netfleet.accounts.roles import Role
from netfleet.controller.factories import make_device

pytestmark = pytest.mark.django_db

# The suite checks rate limits on their own; here several auth calls per test must not trip the 5/min bucket.
no_rate_limit = override_settings(NETFLEET_RATELIMIT_ENABLED=False)


def login(client, login_name, password=TEST_PASSWORD):
    return client.post("/api/v1/auth/login", {"login": login_name, "password": password}, format="json")


def bearer(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def enable_mfa(user):
    client = bearer(login(APIClient(), user.username).json()["access_token"])
    secret = client.post("/api/v1/auth/mfa/setup").json()["secret"]
    totp = pyotp.TOTP(secret)
    response = client.post("/api/v1/auth/mfa/enable", {"code": totp.now()}, format="json")
    assert response.status_code == 200, response.content
    return totp, response.json()["recovery_codes"]


class TestWorkedExample:
    """platform-api.txt "Worked example: login to list devices", steps 1-5, as written."""

    def run_example(self, client, user, site, *, totp=None):
        device = make_device(site.organization, site=site)
        make_device(site.organization)  # no site: only in the unfiltered list
        # Step 1: log in (and complete MFA when required)
        response = login(client, user.email)
        assert response.status_code == 200, response.content
        body = response.json()
        if totp is not None:
            assert body["require_mfa"] is True and "access_token" not in body
            response = client.post(
                "/api/v1/auth/login/mfa", {"mfa_token": body["mfa_token"], "code": totp.now()}, format="json"
            )
            assert response.status_code == 200, response.content
            body = response.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 1800
        token, refresh = body["access_token"], body["refresh_token"]
        api = bearer(token)
        # Step 2: who am I
        me = api.get("/api/v1/auth/me").json()
        assert me["role"] == Role.OPERATOR and "device:read" in me["permissions"]
        assert "controller:write" not in me["permissions"]
        assert [s["id"] for s in me["sites"]] == [str(site.pk)]
        # Step 3: list sites, take the first id
        items = api.get("/api/v1/sites/").json()["items"]
        assert [(s["id"], s["name"], s["slug"]) for s in items] == [(str(site.pk), site.name, site.slug)]
        # Step 4: devices, filtered by site (and without the filter: everything the caller may see)
        devices = api.get(f"/api/v1/devices/?site_id={items[0]['id']}").json()["items"]
        assert [(d["id"], d["name"], d["status"]) for d in devices] == [(str(device.pk), device.name, "modified")]
        assert api.get("/api/v1/devices/").json()["total"] == 2
        # Step 5: refresh; the old refresh token is dead at once
        new = APIClient().post("/api/v1/auth/refresh", {"refresh_token": refresh}, format="json")
        assert new.status_code == 200
        assert new.json()["refresh_token"] != refresh
        assert bearer(new.json()["access_token"]).get("/api/v1/auth/me").status_code == 200
        return refresh

    @no_rate_limit
    def test_without_mfa(self, make_user, organization):
        site = SiteFactory(organization=organization)
        user = make_user(role=Role.OPERATOR, organization=organization)
        self.run_example(APIClient(), user, site)

    @no_rate_limit
    def test_with_mfa(self, make_user, organization):
        site = SiteFactory(organization=organization)
        user = make_user(role=Role.OPERATOR, organization=organization)
        totp, _ = enable_mfa(user)
        with time_machine.travel(timezone.now() + timedelta(seconds=60)):  # a fresh TOTP step for the login
            self.run_example(APIClient(), user, site, totp=totp)


class TestTokens:
    @no_rate_limit
    def test_refresh_reuse_revokes_the_whole_family(self, make_user):
        user = make_user(role=None)
        first = login(APIClient(), user.username).json()
        second = APIClient().post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]}, format="json")
        assert second.status_code == 200
        # the stolen (already used) token is presented again
        replay = APIClient().post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]}, format="json")
        assert replay.status_code == 401 and replay.json()["error"]["code"] == 401
        # every token of that session is now dead, including the legitimate newest pair
        newest = second.json()
        assert bearer(newest["access_token"]).get("/api/v1/auth/me").status_code == 401
        again = APIClient().post("/api/v1/auth/refresh", {"refresh_token": newest["refresh_token"]}, format="json")
        assert again.status_code == 401
        assert AuditEvent.objects.filter(action=AuditAction.TOKEN_REUSE, actor=user).exists()

    @no_rate_limit
    def test_logout_revokes_the_session(self, make_user):
        user = make_user(role=None)
        pair = login(APIClient(), user.username).json()
        api = bearer(pair["access_token"])
        assert api.post("/api/v1/auth/logout").status_code == 204
        assert api.get("/api/v1/auth/me").status_code == 401
        refresh = APIClient().post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}, format="json")
        assert refresh.status_code == 401

    def test_the_access_token_is_decoded_once_per_request(self, make_user, monkeypatch):
        # the rate limiter and authentication both read it (rate limiting stays on here)
        token = login(APIClient(), make_user(role=None).username).json()["access_token"]
        decoded = []
        original = tokens.AccessToken
        monkeypatch.setattr(tokens, "AccessToken", lambda raw: decoded.append(raw) or original(raw))
        assert bearer(token).get("/api/v1/auth/me").status_code == 200
        assert decoded == [token]

    @no_rate_limit
    def test_a_token_verified_before_is_refused_once_expired(self, make_user):
        # the process remembers tokens it verified; their expiry is still checked on every use
        token = login(APIClient(), make_user(role=None).username).json()["access_token"]
        assert bearer(token).get("/api/v1/auth/me").status_code == 200
        with time_machine.travel(timezone.now() + timedelta(minutes=31)):
            response = bearer(token).get("/api/v1/auth/me")
        assert response.status_code == 401 and response.json()["error"]["code"] == 401

    def test_a_verified_token_is_not_verified_again(self, make_user, monkeypatch):
        token = login(APIClient(), make_user(role=None).username).json()["access_token"]
        decoded = []
        original = tokens.AccessToken
        monkeypatch.setattr(tokens, "AccessToken", lambda raw: decoded.append(raw) or original(raw))
        for _ in range(3):
            assert bearer(token).get("/api/v1/auth/me").status_code == 200
        assert decoded == [token]

    @no_rate_limit
    def test_expired_access_token(self, make_user):
        user = make_user(role=None)
        token = login(APIClient(), user.username).json()["access_token"]
        with time_machine.travel(timezone.now() + timedelta(minutes=31)):
            response = bearer(token).get("/api/v1/auth/me")
        assert response.status_code == 401 and response.json()["error"]["code"] == 401

    @pytest.mark.parametrize(
        "header",
        [
            "Bearer garbage",
            "Bearer a.b.c",
            "Bearer",
            "Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo",
        ],
    )
    def test_garbage_tokens(self, api_client, header):
        api_client.credentials(HTTP_AUTHORIZATION=header)
        response = api_client.get("/api/v1/auth/me")
        assert response.status_code == 401 and set(response.json()["error"]) >= {"code", "message", "request_id"}

    def test_refresh_garbage(self, api_client):
        response = api_client.post("/api/v1/auth/refresh", {"refresh_token": "nope"}, format="json")
        assert response.status_code == 401
        assert api_client.post("/api/v1/auth/refresh", {}, format="json").status_code == 422

    @no_rate_limit
    def test_refresh_tokens_are_stored_hashed(self, make_user):
        user = make_user(role=None)
        pair = login(APIClient(), user.username).json()
        with connection.cursor() as cursor:
            cursor.execute("SELECT token_hash FROM accounts_refreshtoken")
            stored = [row[0] for row in cursor.fetchall()]
        assert pair["refresh_token"] not in stored and len(stored) == 1 and len(stored[0]) == 64
        assert RefreshToken.objects.count() == 1


class TestLogin:
    def test_wrong_password_and_unknown_user_look_the_same(self, make_user, api_client):
        user = make_user(role=None)
        wrong = login(api_client, user.username, "not-the-password")
        unknown = login(api_client, "nobody-here", "not-the-password")
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]

    def test_missing_fields_422(self, api_client):
        error = api_client.post("/api/v1/auth/login", {}, format="json").json()["error"]
        assert {d["field"] for d in error["details"]} == {"body.login", "body.password"}

    def test_login_by_username_or_email(self, make_user):
        user = make_user(role=None)
        assert login(APIClient(), user.username).status_code == 200
        assert login(APIClient(), user.email.upper()).status_code == 200

    def test_inactive_user_cannot_log_in(self, make_user):
        user = make_user(role=None, is_active=False)
        assert login(APIClient(), user.username).status_code == 401

    @no_rate_limit
    def test_lockout_and_unlock_after_the_window(self, make_user):
        user = make_user(role=None)
        start = timezone.now()
        with time_machine.travel(start, tick=False):
            for _ in range(5):
                assert login(APIClient(), user.username, "bad-password").status_code == 401
            locked = login(APIClient(), user.username)  # even the right password
            assert locked.status_code == 423 and locked.json()["error"]["code"] == 423
        with time_machine.travel(start + timedelta(minutes=29), tick=False):
            assert login(APIClient(), user.username).status_code == 423
        with time_machine.travel(start + timedelta(minutes=31), tick=False):
            assert login(APIClient(), user.username).status_code == 200
        actions = set(AuditEvent.objects.filter(actor=user).values_list("action", flat=True))
        assert {AuditAction.LOGIN_FAILED, AuditAction.LOCKOUT, AuditAction.LOGIN} <= actions

    @no_rate_limit
    def test_unknown_logins_lock_like_real_ones(self, api_client):
        answers = [login(api_client, "ghost@example.com", "x").status_code for _ in range(6)]
        assert answers == [401, 401, 401, 401, 401, 423]

    def test_login_is_audited_with_request_id_and_ip(self, make_user):
        user = make_user(role=None)
        login(APIClient(), user.username, "wrong")
        event = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
        assert event.actor == user and event.source_ip == "127.0.0.1" and event.request_id


class TestMfa:
    @no_rate_limit
    def test_code_cannot_be_replayed(self, make_user):
        user = make_user(role=None)
        totp, _ = enable_mfa(user)
        with time_machine.travel(timezone.now() + timedelta(seconds=60), tick=False):
            code = totp.now()
            first = login(APIClient(), user.username).json()["mfa_token"]
            ok = APIClient().post("/api/v1/auth/login/mfa", {"mfa_token": first, "code": code}, format="json")
            assert ok.status_code == 200
            second = login(APIClient(), user.username).json()["mfa_token"]
            replay = APIClient().post("/api/v1/auth/login/mfa", {"mfa_token": second, "code": code}, format="json")
            assert replay.status_code == 401

    @no_rate_limit
    def test_mfa_token_is_single_use_and_short_lived(self, make_user):
        user = make_user(role=None)
        totp, _ = enable_mfa(user)
        later = timezone.now() + timedelta(seconds=60)
        with time_machine.travel(later, tick=False):
            token = login(APIClient(), user.username).json()["mfa_token"]
        with time_machine.travel(later + timedelta(minutes=6), tick=False):
            expired = APIClient().post(
                "/api/v1/auth/login/mfa", {"mfa_token": token, "code": totp.now()}, format="json"
            )
            assert expired.status_code == 401

    @no_rate_limit
    def test_recovery_code_works_once_and_is_stored_hashed(self, make_user):
        user = make_user(role=None)
        _, codes = enable_mfa(user)
        assert len(codes) == 10
        assert not RecoveryCode.objects.filter(code_hash__in=codes).exists()
        for expected in (200, 401):
            token = login(APIClient(), user.username).json()["mfa_token"]
            response = APIClient().post("/api/v1/auth/login/mfa", {"mfa_token": token, "code": codes[0]}, format="json")
            assert response.status_code == expected

    @no_rate_limit
    def test_disable(self, make_user):
        user = make_user(role=None)
        _, codes = enable_mfa(user)
        # log in with a recovery code, then disable with another
        token = login(APIClient(), user.username).json()["mfa_token"]
        pair = APIClient().post("/api/v1/auth/login/mfa", {"mfa_token": token, "code": codes[0]}, format="json").json()
        api = bearer(pair["access_token"])
        assert api.post("/api/v1/auth/mfa/disable", {"code": "000000"}, format="json").status_code == 400
        assert api.post("/api/v1/auth/mfa/disable", {"code": codes[1]}, format="json").json() == {"mfa_enabled": False}
        assert "access_token" in login(APIClient(), user.username).json()

    def test_enable_needs_a_valid_code(self, client_for, make_user):
        user = make_user(role=None)
        api = client_for(user)
        api.post("/api/v1/auth/mfa/setup")
        assert api.post("/api/v1/auth/mfa/enable", {"code": "123456"}, format="json").status_code == 400
        user.refresh_from_db()
        assert user.mfa_enabled is False


class TestUsersFaces:
    @no_rate_limit
    def test_users_login_returns_the_same_pair(self, make_user):
        user = make_user(role=None)
        body = APIClient().post("/users/login/", {"username": user.username, "password": TEST_PASSWORD}).json()
        assert body["access"] == body["access_token"] and body["refresh"] == body["refresh_token"]
        assert bearer(body["access"]).get("/api/v1/auth/me").status_code == 200

    def test_users_login_errors_use_the_routers_shape(self, api_client):
        response = api_client.post("/users/login", {"username": "x", "password": "y"}, format="json")
        assert response.status_code == 401 and response.json() == {"error": "Invalid credentials"}
        response = api_client.post("/users/login/", {}, format="json")
        assert response.status_code == 422 and isinstance(response.json()["error"], str)


class TestMe:
    def test_superuser(self, admin_client):
        me = admin_client.get("/api/v1/auth/me").json()
        assert me["role"] == "superuser" and "user:admin" in me["permissions"]

    def test_site_limited_member(self, make_user, organization, client_for):
        granted = SiteFactory(organization=organization)
        SiteFactory(organization=organization)
        user = make_user(role=Role.SITE_ADMIN, organization=organization, sites=[granted])
        me = client_for(user).get("/api/v1/auth/me").json()
        assert me["organizations"] == [
            {"id": str(organization.pk), "name": organization.name, "slug": organization.slug, "role": "site_admin"}
        ]
        assert [s["id"] for s in me["sites"]] == [str(granted.pk)]


@no_rate_limit
def test_password_change_ends_the_other_sessions(make_user, admin_client):
    user = make_user(role=None)
    stolen = login(APIClient(), user.username).json()
    response = admin_client.patch(f"/api/v1/users/{user.pk}/", {"password": "a-brand-new-Passphrase-42"}, format="json")
    assert response.status_code == 200, response.content
    assert bearer(stolen["access_token"]).get("/api/v1/auth/me").status_code == 401
    refresh = APIClient().post("/api/v1/auth/refresh", {"refresh_token": stolen["refresh_token"]}, format="json")
    assert refresh.status_code == 401
    assert login(APIClient(), user.username, "a-brand-new-Passphrase-42").status_code == 200


@no_rate_limit
def test_deactivated_user_tokens_stop_working(make_user, admin_client):
    user = make_user(role=None)
    pair = login(APIClient(), user.username).json()
    assert admin_client.patch(f"/api/v1/users/{user.pk}/", {"is_active": False}, format="json").status_code == 200
    assert bearer(pair["access_token"]).get("/api/v1/auth/me").status_code == 401
