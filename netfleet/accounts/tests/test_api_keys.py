"""API keys: creation shown once, hashed storage, scope never wider than the owner, revoke/expiry, the cap,
and the /users/api-key-login/ face."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from netfleet.accounts.factories import OrganizationFactory, SiteFactory
from netfleet.accounts.models import ApiKey, AuditAction, AuditEvent
from netfleet.accounts.roles import Role

pytestmark = pytest.mark.django_db


def create_key(client, **fields):
    payload = {"name": "automation", "permissions": ["device:read"], **fields}
    return client.post("/api/v1/api-keys/", payload, format="json")


def key_client(secret):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=secret)
    return client


class TestLifecycle:
    def test_secret_is_shown_once_and_only_hashes_are_stored(self, client_as):
        client, user = client_as(Role.OPERATOR)
        created = create_key(client)
        assert created.status_code == 201, created.content
        body = created.json()
        prefix, _, secret = body["key"].partition(".")
        assert prefix == body["prefix"] and len(secret) >= 40
        # never again: not in the list, not in the detail
        listed = client.get("/api/v1/api-keys/").json()
        assert listed["total"] == 1 and "key" not in listed["items"][0]
        assert "key" not in client.get(f"/api/v1/api-keys/{body['id']}/").json()
        assert "secret_hash" not in str(listed)
        with connection.cursor() as cursor:
            cursor.execute("SELECT prefix, secret_hash FROM accounts_apikey")
            rows = cursor.fetchall()
        assert len(rows) == 1 and secret not in rows[0][1] and len(rows[0][1]) == 64
        assert AuditEvent.objects.filter(action=AuditAction.API_KEY_CREATED, actor=user).exists()

    def test_key_authenticates_and_records_last_use(self, client_as, organization):
        client, _ = client_as(Role.OPERATOR)
        SiteFactory(organization=organization)
        body = create_key(client).json()
        response = key_client(body["key"]).get("/api/v1/sites/")
        assert response.status_code == 200 and response.json()["total"] == 1
        assert ApiKey.objects.get(pk=body["id"]).last_used_at is not None

    def test_revoked_key_is_401(self, client_as):
        client, _ = client_as(Role.OPERATOR)
        body = create_key(client).json()
        assert client.delete(f"/api/v1/api-keys/{body['id']}").status_code == 204
        response = key_client(body["key"]).get("/api/v1/sites/")
        assert response.status_code == 401 and response.json()["error"]["code"] == 401
        listed = client.get("/api/v1/api-keys/").json()["items"][0]
        assert listed["revoked_at"] and listed["is_active"] is False

    def test_revoke_action(self, client_as):
        client, _ = client_as(Role.OPERATOR)
        body = create_key(client).json()
        revoked = client.post(f"/api/v1/api-keys/{body['id']}/revoke/").json()
        assert revoked["is_active"] is False
        assert key_client(body["key"]).get("/api/v1/sites/").status_code == 401
        assert AuditEvent.objects.filter(action=AuditAction.API_KEY_REVOKED).exists()

    def test_expired_key_is_401(self, client_as):
        client, _ = client_as(Role.OPERATOR)
        expires = timezone.now() + timedelta(hours=1)
        body = create_key(client, expires_at=expires.isoformat()).json()
        assert key_client(body["key"]).get("/api/v1/sites/").status_code == 200
        with time_machine.travel(expires + timedelta(seconds=1)):
            assert key_client(body["key"]).get("/api/v1/sites/").status_code == 401

    def test_wrong_secret_is_401(self, client_as):
        client, _ = client_as(Role.OPERATOR)
        body = create_key(client).json()
        assert key_client(body["prefix"] + ".wrong").get("/api/v1/sites/").status_code == 401
        assert key_client("garbage").get("/api/v1/sites/").status_code == 401

    def test_keys_are_private_to_their_owner(self, client_as):
        alice, _ = client_as(Role.ORG_ADMIN)
        bob, _ = client_as(Role.ORG_ADMIN)
        body = create_key(alice).json()
        assert bob.get(f"/api/v1/api-keys/{body['id']}/").status_code == 404
        assert bob.delete(f"/api/v1/api-keys/{body['id']}/").status_code == 404
        assert bob.get("/api/v1/api-keys/").json()["total"] == 0

    @override_settings(NETFLEET_API_KEYS_PER_USER=2)
    def test_cap_per_user_is_409(self, client_as):
        client, _ = client_as(Role.OPERATOR)
        assert create_key(client).status_code == 201
        assert create_key(client).status_code == 201
        response = create_key(client)
        assert response.status_code == 409 and "limit" in response.json()["error"]["message"]

    def test_past_expiry_and_unknown_permission_are_422(self, client_as):
        client, _ = client_as(Role.OPERATOR)
        past = (timezone.now() - timedelta(days=1)).isoformat()
        fields = {d["field"] for d in create_key(client, expires_at=past).json()["error"]["details"]}
        assert fields == {"body.expires_at"}
        assert create_key(client, permissions=["root:everything"]).status_code == 422


class TestScope:
    def test_cannot_exceed_the_owner(self, client_as):
        client, _ = client_as(Role.OPERATOR)
        response = create_key(client, permissions=["device:read", "controller:write"])
        assert response.status_code == 422
        assert "controller:write" in response.json()["error"]["details"][0]["message"]

    def test_narrower_scope_is_enforced(self, client_as, organization):
        client, _ = client_as(Role.ORG_ADMIN)
        site = SiteFactory(organization=organization)
        secret = create_key(client, permissions=["device:read"]).json()["key"]
        api = key_client(secret)
        assert api.get(f"/api/v1/sites/{site.pk}/").status_code == 200
        # the owner may write; the key may not
        assert client.patch(f"/api/v1/sites/{site.pk}/", {"name": "x"}, format="json").status_code == 200
        response = api.patch(f"/api/v1/sites/{site.pk}/", {"name": "y"}, format="json")
        assert response.status_code == 403

    def test_site_scope(self, client_as, organization):
        client, _ = client_as(Role.ORG_ADMIN)
        granted, other = SiteFactory(organization=organization), SiteFactory(organization=organization)
        secret = create_key(client, site_ids=[str(granted.pk)]).json()["key"]
        items = key_client(secret).get("/api/v1/sites/").json()["items"]
        assert [s["id"] for s in items] == [str(granted.pk)]
        assert key_client(secret).get(f"/api/v1/sites/{other.pk}/").status_code == 404

    def test_organization_scope(self, make_user, client_for):
        org_a, org_b = OrganizationFactory(), OrganizationFactory()
        user = make_user(role=Role.OPERATOR, organization=org_a)
        from netfleet.accounts.factories import MembershipFactory

        MembershipFactory(user=user, organization=org_b, role=Role.OPERATOR)
        site_a, site_b = SiteFactory(organization=org_a), SiteFactory(organization=org_b)
        secret = create_key(client_for(user), organization_ids=[str(org_a.pk)]).json()["key"]
        assert [s["id"] for s in key_client(secret).get("/api/v1/sites/").json()["items"]] == [str(site_a.pk)]
        assert key_client(secret).get(f"/api/v1/sites/{site_b.pk}/").status_code == 404

    def test_cannot_scope_to_a_foreign_organization(self, client_as, other_organization):
        client, _ = client_as(Role.ORG_ADMIN)
        assert create_key(client, organization_ids=[str(other_organization.pk)]).status_code == 422


class TestApiKeyLoginFace:
    def test_jwt_pair_keeps_the_key_scope(self, client_as, organization):
        client, _ = client_as(Role.ORG_ADMIN)
        site = SiteFactory(organization=organization)
        body = create_key(client).json()
        public, _, private = body["key"].partition(".")
        pair = APIClient().post("/users/api-key-login/", {"public_key": public, "private_key": private}).json()
        jwt_client = APIClient()
        jwt_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
        assert jwt_client.get(f"/api/v1/sites/{site.pk}/").status_code == 200
        assert jwt_client.patch(f"/api/v1/sites/{site.pk}/", {"name": "z"}, format="json").status_code == 403
        # revoking the key ends the sessions opened with it
        client.delete(f"/api/v1/api-keys/{body['id']}/")
        assert jwt_client.get(f"/api/v1/sites/{site.pk}/").status_code == 401

    def test_bad_key_uses_the_routers_error_shape(self, api_client):
        response = api_client.post("/users/api-key-login/", {"public_key": "nfk_x", "private_key": "y"}, format="json")
        assert response.status_code == 401 and response.json() == {"error": "Invalid API key"}


def test_bearer_and_api_key_together_is_400(client_as):
    client, _ = client_as(Role.OPERATOR)
    secret = create_key(client).json()["key"]
    client.credentials(HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"], HTTP_X_API_KEY=secret)
    response = client.get("/api/v1/sites/")
    assert response.status_code == 400 and response.json()["error"]["code"] == 400
