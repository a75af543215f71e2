"""Organizations, users, organization members and the audit trail over HTTP, and the admin pages."""

import uuid
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from netfleet.accounts.factories import MembershipFactory, OrganizationFactory, SiteFactory, UserFactory
from netfleet.accounts.models import ApiKey, AuditAction, AuditEvent, Membership, Organization, User
from netfleet.accounts.roles import Role

pytestmark = pytest.mark.django_db

STRONG_PASSWORD = "plum-Vortex-41-quietly"
OTHER_STRONG_PASSWORD = "amber-Lattice-77-slowly"
ORGANIZATION_FIELDS = {"id", "name", "slug", "is_active", "created", "modified"}
USER_FIELDS = {
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_superuser",
    "mfa_enabled",
    "date_joined",
    "last_login",
}
MEMBER_FIELDS = {"user", "role", "sites", "created"}
AUDIT_FIELDS = {
    "id",
    "created",
    "action",
    "actor_id",
    "actor_label",
    "organization_id",
    "target_type",
    "target_id",
    "request_id",
    "source_ip",
    "details",
}


def error_of(response, code):
    assert response.status_code == code, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["request_id"]
    return error


def ids(response):
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def member(organization, role=Role.VIEWER, sites=(), **fields):
    user = UserFactory(**fields)
    membership = MembershipFactory(user=user, organization=organization, role=role)
    membership.sites.set(sites)
    return user


@pytest.fixture
def superuser(make_user):
    return make_user(role=None, superuser=True)


@pytest.fixture
def superuser_client(superuser, client_for):
    return client_for(superuser)


# -- organizations ------------------------------------------------------------------------------------------------


class TestOrganizations:
    def test_member_lists_only_its_organizations(self, client_as, organization, other_organization):
        client, _user = client_as(Role.VIEWER)
        body = client.get("/api/v1/organizations/").json()
        assert set(body) == {"items", "total", "page", "per_page"}
        assert body["total"] == 1
        assert set(body["items"][0]) == ORGANIZATION_FIELDS
        assert body["items"][0]["id"] == str(organization.pk)

    def test_superuser_lists_every_organization(self, admin_client, organization, other_organization):
        assert set(ids(admin_client.get("/api/v1/organizations/"))) == {
            str(organization.pk),
            str(other_organization.pk),
        }

    def test_member_reads_its_organization(self, client_as, organization):
        client, _user = client_as(Role.OPERATOR)
        body = client.get(f"/api/v1/organizations/{organization.pk}/").json()
        assert body["slug"] == organization.slug and body["is_active"] is True

    def test_other_organization_is_404(self, client_as, other_organization):
        client, _user = client_as(Role.ORG_ADMIN)
        error_of(client.get(f"/api/v1/organizations/{other_organization.pk}/"), 404)
        error_of(client.patch(f"/api/v1/organizations/{other_organization.pk}/", {"name": "x"}, format="json"), 404)
        error_of(client.delete(f"/api/v1/organizations/{other_organization.pk}/"), 404)
        error_of(client.get(f"/api/v1/organizations/{uuid.uuid4()}/"), 404)

    def test_deactivated_organization_disappears_for_members(self, client_as, organization):
        client, _user = client_as(Role.ORG_ADMIN)
        Organization.objects.filter(pk=organization.pk).update(is_active=False)
        error_of(client.get(f"/api/v1/organizations/{organization.pk}/"), 404)

    def test_superuser_creates(self, admin_client):
        response = admin_client.post("/api/v1/organizations/", {"name": "Acme", "slug": "acme"}, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert set(body) == ORGANIZATION_FIELDS
        assert (body["name"], body["slug"], body["is_active"]) == ("Acme", "acme", True)
        uuid.UUID(body["id"])
        assert Organization.objects.get(slug="acme").name == "Acme"

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.ORG_ADMIN])
    def test_others_cannot_create(self, client_as, role):
        client, _user = client_as(role)
        error_of(client.post("/api/v1/organizations/", {"name": "Acme", "slug": "acme"}, format="json"), 403)
        assert not Organization.objects.filter(slug="acme").exists()

    def test_duplicate_slug_is_409(self, admin_client, organization):
        response = admin_client.post("/api/v1/organizations/", {"name": "Twin", "slug": organization.slug})
        error = error_of(response, 409)
        assert error["message"].startswith("Conflict")

    def test_invalid_slug_is_422(self, admin_client):
        error = error_of(admin_client.post("/api/v1/organizations/", {"name": "x", "slug": "has space"}), 422)
        assert [item["field"] for item in error["details"]] == ["body.slug"]

    def test_org_admin_patches_its_organization(self, client_as, organization):
        client, _user = client_as(Role.ORG_ADMIN)
        response = client.patch(
            f"/api/v1/organizations/{organization.pk}/", {"name": "Renamed", "is_active": False}, format="json"
        )
        assert response.status_code == 200, response.content
        organization.refresh_from_db()
        assert organization.name == "Renamed"
        assert organization.is_active is True  # deactivating a tenant is for superusers

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.SITE_ADMIN])
    def test_lower_roles_cannot_patch(self, client_as, organization, role):
        client, _user = client_as(role)
        response = client.patch(f"/api/v1/organizations/{organization.pk}/", {"name": "x"}, format="json")
        assert "user:admin" in error_of(response, 403)["message"]

    def test_org_admin_of_one_organization_cannot_patch_another_it_belongs_to(
        self, client_as, make_user, organization, other_organization
    ):
        client, user = client_as(Role.ORG_ADMIN)
        MembershipFactory(user=user, organization=other_organization, role=Role.VIEWER)
        response = client.patch(f"/api/v1/organizations/{other_organization.pk}/", {"name": "x"}, format="json")
        error_of(response, 403)

    def test_superuser_deactivates_and_deletes(self, admin_client, organization):
        response = admin_client.patch(f"/api/v1/organizations/{organization.pk}/", {"is_active": False})
        assert response.json()["is_active"] is False
        assert admin_client.delete(f"/api/v1/organizations/{organization.pk}/").status_code == 204
        assert not Organization.objects.filter(pk=organization.pk).exists()

    def test_org_admin_cannot_delete(self, client_as, organization):
        client, _user = client_as(Role.ORG_ADMIN)
        error = error_of(client.delete(f"/api/v1/organizations/{organization.pk}/"), 403)
        assert "superusers" in error["message"]
        assert Organization.objects.filter(pk=organization.pk).exists()

    def test_put_is_not_allowed(self, admin_client, organization):
        error_of(admin_client.put(f"/api/v1/organizations/{organization.pk}/", {"name": "x", "slug": "x"}), 405)

    def test_filters(self, admin_client):
        alpha = OrganizationFactory(name="Alpha Networks", slug="alpha")
        OrganizationFactory(name="Beta", slug="beta", is_active=False)
        assert ids(admin_client.get("/api/v1/organizations/?search=alpha")) == [str(alpha.pk)]
        assert ids(admin_client.get("/api/v1/organizations/?slug=alpha")) == [str(alpha.pk)]
        assert str(alpha.pk) not in ids(admin_client.get("/api/v1/organizations/?is_active=false"))

    def test_unauthenticated_is_401(self, api_client):
        error_of(api_client.get("/api/v1/organizations/"), 401)


# -- users --------------------------------------------------------------------------------------------------------


class TestUserCreate:
    def test_superuser_creates_user_with_hashed_password(self, admin_client):
        payload = {
            "username": "alice",
            "email": "alice@example.com",
            "first_name": "Alice",
            "last_name": "Liddell",
            "password": STRONG_PASSWORD,
        }
        response = admin_client.post("/api/v1/users/", payload, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert set(body) == USER_FIELDS
        assert "password" not in body and STRONG_PASSWORD.encode() not in response.content
        assert (body["username"], body["is_superuser"], body["mfa_enabled"]) == ("alice", False, False)
        stored = User.objects.get(username="alice")
        assert stored.password != STRONG_PASSWORD
        assert STRONG_PASSWORD not in stored.password
        assert stored.password.startswith(("pbkdf2_", "argon2", "bcrypt", "scrypt", "md5"))
        assert stored.check_password(STRONG_PASSWORD)
        assert not stored.memberships.exists()

    def test_without_password_the_account_cannot_log_in(self, admin_client):
        response = admin_client.post("/api/v1/users/", {"username": "robot", "email": "robot@example.com"})
        assert response.status_code == 201, response.content
        assert not User.objects.get(username="robot").has_usable_password()

    @pytest.mark.parametrize("weak", ["short", "password123", "1234567890123", "aliceliddell"])
    def test_weak_password_is_422(self, admin_client, weak):
        payload = {"username": "aliceliddell", "email": "a@example.com", "password": weak}
        error = error_of(admin_client.post("/api/v1/users/", payload, format="json"), 422)
        assert {item["field"] for item in error["details"]} == {"body.password"}
        assert not User.objects.filter(username="aliceliddell").exists()

    def test_superuser_creates_a_superuser_and_it_is_audited(self, admin_client):
        payload = {"username": "root2", "email": "root2@example.com", "is_superuser": True}
        response = admin_client.post("/api/v1/users/", payload, format="json")
        assert response.json()["is_superuser"] is True
        user = User.objects.get(username="root2")
        assert user.is_superuser and user.is_staff
        event = AuditEvent.objects.get(action=AuditAction.USER_CHANGED, target_id=str(user.pk))
        assert event.details["change"] == "user_created" and event.details["is_superuser"] is True
        assert event.organization is None

    def test_superuser_creates_with_membership(self, admin_client, organization):
        site = SiteFactory(organization=organization)
        payload = {
            "username": "bob",
            "email": "bob@example.com",
            "organization": str(organization.pk),
            "role": Role.ORG_ADMIN,
            "sites": [str(site.pk)],
        }
        assert admin_client.post("/api/v1/users/", payload, format="json").status_code == 201
        membership = Membership.objects.get(user__username="bob")
        assert membership.role == Role.ORG_ADMIN and list(membership.sites.all()) == [site]

    def test_org_admin_creates_user_with_membership(self, client_as, organization):
        client, admin = client_as(Role.ORG_ADMIN)
        payload = {
            "username": "carol",
            "email": "carol@example.com",
            "password": STRONG_PASSWORD,
            "organization": str(organization.pk),
            "role": Role.OPERATOR,
        }
        response = client.post("/api/v1/users/", payload, format="json")
        assert response.status_code == 201, response.content
        membership = Membership.objects.get(user__username="carol")
        assert (membership.organization, membership.role) == (organization, Role.OPERATOR)
        actions = set(
            AuditEvent.objects.filter(target_id=response.json()["id"], organization=organization).values_list(
                "action", flat=True
            )
        )
        assert actions == {AuditAction.USER_CHANGED, AuditAction.PERMISSION_CHANGED}
        assert AuditEvent.objects.filter(actor=admin).count() == 2
        # the new user is now visible to its creator
        assert client.get(f"/api/v1/users/{response.json()['id']}/").status_code == 200

    def test_org_admin_cannot_make_a_superuser(self, client_as, organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        payload = {
            "username": "sneaky",
            "email": "sneaky@example.com",
            "is_superuser": True,
            "organization": str(organization.pk),
            "role": Role.VIEWER,
        }
        assert client.post("/api/v1/users/", payload, format="json").json()["is_superuser"] is False
        assert User.objects.get(username="sneaky").is_superuser is False

    def test_org_admin_must_give_organization_and_role(self, client_as):
        client, _admin = client_as(Role.ORG_ADMIN)
        error = error_of(client.post("/api/v1/users/", {"username": "dave", "email": "dave@example.com"}), 422)
        assert {item["field"] for item in error["details"]} == {"body.organization", "body.role"}
        assert not User.objects.filter(username="dave").exists()

    @pytest.mark.parametrize("role", [Role.ORG_ADMIN, Role.SITE_ADMIN])
    def test_org_admin_cannot_grant_its_own_role(self, client_as, organization, role):
        client, _admin = client_as(Role.ORG_ADMIN)
        payload = {"username": "eve", "email": "eve@example.com", "organization": str(organization.pk), "role": role}
        response = client.post("/api/v1/users/", payload, format="json")
        if role == Role.ORG_ADMIN:
            assert "below your own (org_admin)" in error_of(response, 403)["message"]
            assert not User.objects.filter(username="eve").exists()
        else:
            assert response.status_code == 201

    def test_org_admin_cannot_create_in_another_organization(self, client_as, other_organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        payload = {
            "username": "frank",
            "email": "frank@example.com",
            "organization": str(other_organization.pk),
            "role": Role.VIEWER,
        }
        error = error_of(client.post("/api/v1/users/", payload, format="json"), 422)
        assert error["details"][0]["field"] == "body.organization"

    def test_sites_must_belong_to_the_organization(self, client_as, organization, other_organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        foreign = SiteFactory(organization=other_organization)
        payload = {
            "username": "gina",
            "email": "gina@example.com",
            "organization": str(organization.pk),
            "role": Role.VIEWER,
            "sites": [str(foreign.pk)],
        }
        error = error_of(client.post("/api/v1/users/", payload, format="json"), 422)
        assert error["details"][0]["field"] == "body.sites"

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.SITE_ADMIN])
    def test_without_user_admin_is_403(self, client_as, organization, role):
        client, _user = client_as(role)
        payload = {"username": "h", "email": "h@example.com", "organization": str(organization.pk), "role": "viewer"}
        assert "user:admin" in error_of(client.post("/api/v1/users/", payload, format="json"), 403)["message"]

    def test_duplicate_username_and_email_are_409(self, admin_client):
        UserFactory(username="ivan", email="ivan@example.com")
        error_of(admin_client.post("/api/v1/users/", {"username": "ivan", "email": "other@example.com"}), 409)
        error_of(admin_client.post("/api/v1/users/", {"username": "ivan2", "email": "IVAN@example.com"}), 409)


class TestUserReadAndFilter:
    def test_superuser_sees_everyone(self, admin_client, organization):
        alone = UserFactory()
        body = admin_client.get("/api/v1/users/").json()
        assert str(alone.pk) in [item["id"] for item in body["items"]]
        assert all(set(item) == USER_FIELDS for item in body["items"])

    def test_org_admin_sees_its_organizations_users_only(self, client_as, organization, other_organization):
        client, admin = client_as(Role.ORG_ADMIN)
        colleague = member(organization)
        stranger = member(other_organization)
        loner = UserFactory()
        assert set(ids(client.get("/api/v1/users/"))) == {str(admin.pk), str(colleague.pk)}
        assert client.get(f"/api/v1/users/{colleague.pk}/").status_code == 200
        error_of(client.get(f"/api/v1/users/{stranger.pk}/"), 404)
        error_of(client.get(f"/api/v1/users/{loner.pk}/"), 404)

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.SITE_ADMIN])
    def test_others_see_only_themselves(self, client_as, organization, role):
        client, user = client_as(role)
        colleague = member(organization)
        assert ids(client.get("/api/v1/users/")) == [str(user.pk)]
        assert client.get(f"/api/v1/users/{user.pk}/").json()["username"] == user.username
        error_of(client.get(f"/api/v1/users/{colleague.pk}/"), 404)

    def test_search_and_organization_filters(self, admin_client, organization, other_organization):
        zed = member(organization, username="zed", email="zed@corp.example", first_name="Zebulon")
        yan = member(other_organization, username="yan", email="yan@example.com", last_name="Zhou")
        assert set(ids(admin_client.get("/api/v1/users/?search=zebul"))) == {str(zed.pk)}
        assert set(ids(admin_client.get("/api/v1/users/?search=corp.example"))) == {str(zed.pk)}
        assert set(ids(admin_client.get("/api/v1/users/?search=zhou"))) == {str(yan.pk)}
        assert set(ids(admin_client.get(f"/api/v1/users/?organization_id={other_organization.pk}"))) == {str(yan.pk)}
        error = error_of(admin_client.get("/api/v1/users/?organization_id=nope"), 422)
        assert error["details"][0]["field"] == "query.organization_id"

    def test_list_query_count_does_not_grow(self, admin_client, organization):
        member(organization)

        def count():
            with CaptureQueriesContext(connection) as queries:
                assert admin_client.get("/api/v1/users/").status_code == 200
            return len(queries)

        few = count()
        for _ in range(5):
            member(organization)
        assert count() == few


class TestUserUpdate:
    def test_org_admin_updates_a_lower_member(self, client_as, organization):
        client, admin = client_as(Role.ORG_ADMIN)
        target = member(organization, Role.SITE_ADMIN)
        response = client.patch(f"/api/v1/users/{target.pk}/", {"first_name": "Renamed"}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["first_name"] == "Renamed"
        assert not AuditEvent.objects.exists()  # profile fields are not audited

    def test_deactivation_and_password_change_are_audited(self, client_as, organization):
        client, admin = client_as(Role.ORG_ADMIN)
        target = member(organization, Role.OPERATOR)
        response = client.patch(
            f"/api/v1/users/{target.pk}/", {"is_active": False, "password": STRONG_PASSWORD}, format="json"
        )
        assert response.status_code == 200, response.content
        assert "password" not in response.json()
        target.refresh_from_db()
        assert target.is_active is False and target.check_password(STRONG_PASSWORD)
        event = AuditEvent.objects.get(action=AuditAction.USER_CHANGED)
        assert (event.actor, event.organization, event.target_id) == (admin, organization, str(target.pk))
        assert event.details == {
            "change": "user_updated",
            "is_active": {"from": True, "to": False},
            "password_changed": True,
        }
        assert STRONG_PASSWORD not in str(event.details)
        assert event.request_id and event.source_ip == "127.0.0.1"

    def test_weak_password_update_is_422(self, admin_client, organization):
        target = member(organization)
        old_hash = target.password
        error = error_of(admin_client.patch(f"/api/v1/users/{target.pk}/", {"password": "123"}, format="json"), 422)
        assert error["details"][0]["field"] == "body.password"
        target.refresh_from_db()
        assert target.password == old_hash

    def test_is_superuser_is_read_only_for_org_admins(self, client_as, organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        target = member(organization)
        response = client.patch(f"/api/v1/users/{target.pk}/", {"is_superuser": True}, format="json")
        assert response.status_code == 200 and response.json()["is_superuser"] is False
        target.refresh_from_db()
        assert target.is_superuser is False

    def test_superuser_grants_superuser_and_it_is_audited(self, admin_client, organization):
        target = member(organization)
        response = admin_client.patch(f"/api/v1/users/{target.pk}/", {"is_superuser": True}, format="json")
        assert response.json()["is_superuser"] is True
        target.refresh_from_db()
        assert target.is_superuser and target.is_staff
        event = AuditEvent.objects.get(action=AuditAction.USER_CHANGED)
        assert event.details["is_superuser"] == {"from": False, "to": True}
        assert event.organization == organization

    def test_mfa_enabled_is_read_only(self, admin_client, organization):
        target = member(organization)
        admin_client.patch(f"/api/v1/users/{target.pk}/", {"mfa_enabled": True}, format="json")
        target.refresh_from_db()
        assert target.mfa_enabled is False

    def test_org_admin_cannot_change_a_peer(self, client_as, organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        peer = member(organization, Role.ORG_ADMIN)
        error = error_of(client.patch(f"/api/v1/users/{peer.pk}/", {"is_active": False}, format="json"), 403)
        assert "not below your own" in error["message"]
        peer.refresh_from_db()
        assert peer.is_active is True

    def test_org_admin_cannot_change_a_user_of_an_organization_it_does_not_administer(
        self, client_as, organization, other_organization
    ):
        client, _admin = client_as(Role.ORG_ADMIN)
        target = member(organization)
        MembershipFactory(user=target, organization=other_organization, role=Role.VIEWER)
        error = error_of(client.patch(f"/api/v1/users/{target.pk}/", {"first_name": "x"}, format="json"), 403)
        assert "user:admin" in error["message"]

    def test_org_admin_cannot_change_a_superuser(self, client_as, organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        boss = member(organization, is_superuser=True)
        error_of(client.patch(f"/api/v1/users/{boss.pk}/", {"password": STRONG_PASSWORD}, format="json"), 403)

    def test_members_cannot_change_themselves(self, client_as):
        client, user = client_as(Role.ORG_ADMIN)
        error_of(client.patch(f"/api/v1/users/{user.pk}/", {"is_active": False}, format="json"), 403)

    def test_superuser_cannot_demote_or_deactivate_itself(self, superuser, superuser_client):
        for change in ({"is_superuser": False}, {"is_active": False}):
            error_of(superuser_client.patch(f"/api/v1/users/{superuser.pk}/", change, format="json"), 400)
        superuser.refresh_from_db()
        assert superuser.is_superuser and superuser.is_active

    def test_superuser_changes_its_own_password(self, superuser, superuser_client):
        response = superuser_client.patch(
            f"/api/v1/users/{superuser.pk}/", {"password": OTHER_STRONG_PASSWORD}, format="json"
        )
        assert response.status_code == 200, response.content
        superuser.refresh_from_db()
        assert superuser.check_password(OTHER_STRONG_PASSWORD)

    def test_other_tenants_user_is_404(self, client_as, other_organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        stranger = member(other_organization)
        error_of(client.patch(f"/api/v1/users/{stranger.pk}/", {"first_name": "x"}, format="json"), 404)
        error_of(client.delete(f"/api/v1/users/{stranger.pk}/"), 404)


class TestUserDelete:
    def test_org_admin_deletes_a_lower_member(self, client_as, organization):
        client, admin = client_as(Role.ORG_ADMIN)
        target = member(organization, Role.NETWORK_ADMIN)
        assert client.delete(f"/api/v1/users/{target.pk}/").status_code == 204
        assert not User.objects.filter(pk=target.pk).exists()
        event = AuditEvent.objects.get(action=AuditAction.USER_CHANGED)
        assert event.target_id == str(target.pk) and event.organization == organization
        assert event.details == {"change": "user_deleted", "username": target.username, "role": "network_admin"}

    def test_nobody_deletes_themselves(self, client_as, superuser, superuser_client):
        client, admin = client_as(Role.ORG_ADMIN)
        assert "own account" in error_of(client.delete(f"/api/v1/users/{admin.pk}/"), 400)["message"]
        error_of(superuser_client.delete(f"/api/v1/users/{superuser.pk}/"), 400)
        assert User.objects.filter(pk__in=[admin.pk, superuser.pk]).count() == 2

    def test_org_admin_cannot_delete_a_peer(self, client_as, organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        peer = member(organization, Role.ORG_ADMIN)
        error_of(client.delete(f"/api/v1/users/{peer.pk}/"), 403)
        assert User.objects.filter(pk=peer.pk).exists()

    def test_superuser_deletes_anyone(self, admin_client, organization):
        target = member(organization, Role.ORG_ADMIN)
        assert admin_client.delete(f"/api/v1/users/{target.pk}/").status_code == 204


# -- organization members -----------------------------------------------------------------------------------------


def members_url(organization, user=None):
    base = f"/api/v1/organizations/{organization.pk}/members/"
    return base if user is None else f"{base}{user.pk}/"


class TestMembersRead:
    def test_list_shape(self, client_as, organization):
        client, admin = client_as(Role.ORG_ADMIN)
        site = SiteFactory(organization=organization)
        operator = member(organization, Role.OPERATOR, sites=[site])
        body = client.get(members_url(organization)).json()
        assert set(body) == {"items", "total", "page", "per_page"} and body["total"] == 2
        by_user = {item["user"]["id"]: item for item in body["items"]}
        item = by_user[str(operator.pk)]
        assert set(item) == MEMBER_FIELDS
        assert item["user"] == {"id": str(operator.pk), "username": operator.username, "email": operator.email}
        assert (item["role"], item["sites"]) == ("operator", [str(site.pk)])
        assert by_user[str(admin.pk)]["role"] == "org_admin"

    def test_detail_by_user_id(self, client_as, organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        viewer = member(organization)
        assert client.get(members_url(organization, viewer)).json()["user"]["id"] == str(viewer.pk)
        error_of(client.get(members_url(organization, UserFactory())), 404)
        error_of(client.get(f"{members_url(organization)}not-a-uuid/"), 404)

    def test_filters(self, admin_client, organization):
        operator = member(organization, Role.OPERATOR, username="opal")
        member(organization, Role.VIEWER, username="vera")
        body = admin_client.get(members_url(organization) + "?role=operator").json()
        assert [item["user"]["id"] for item in body["items"]] == [str(operator.pk)]
        body = admin_client.get(members_url(organization) + "?search=opa").json()
        assert [item["user"]["id"] for item in body["items"]] == [str(operator.pk)]

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.SITE_ADMIN])
    def test_without_user_admin_is_403(self, client_as, organization, role):
        client, _user = client_as(role)
        assert "user:admin" in error_of(client.get(members_url(organization)), 403)["message"]

    def test_org_admin_of_another_organization_gets_404(self, client_as, other_organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        stranger = member(other_organization)
        error_of(client.get(members_url(other_organization)), 404)
        error_of(client.get(members_url(other_organization, stranger)), 404)
        error_of(client.post(members_url(other_organization), {"user": str(stranger.pk), "role": "viewer"}), 404)
        error_of(client.delete(members_url(other_organization, stranger)), 404)
        error_of(client.get(f"/api/v1/organizations/{uuid.uuid4()}/members/"), 404)

    def test_viewer_in_the_organization_gets_403_not_404(self, client_as, make_user, organization, other_organization):
        client, user = client_as(Role.ORG_ADMIN)
        MembershipFactory(user=user, organization=other_organization, role=Role.VIEWER)
        error_of(client.get(members_url(other_organization)), 403)

    def test_unauthenticated_is_401(self, api_client, organization):
        error_of(api_client.get(members_url(organization)), 401)

    def test_list_query_count_does_not_grow(self, admin_client, organization):
        site = SiteFactory(organization=organization)
        member(organization, sites=[site])

        def count():
            with CaptureQueriesContext(connection) as queries:
                assert admin_client.get(members_url(organization)).status_code == 200
            return len(queries)

        few = count()
        for _ in range(5):
            member(organization, sites=[site])
        assert count() == few


class TestMembersWrite:
    def test_superuser_adds_any_user_with_any_role(self, admin_client, organization):
        newcomer = UserFactory()
        site = SiteFactory(organization=organization)
        payload = {"user": str(newcomer.pk), "role": "org_admin", "sites": [str(site.pk)]}
        response = admin_client.post(members_url(organization), payload, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["user"]["username"] == newcomer.username
        membership = Membership.objects.get(user=newcomer, organization=organization)
        assert membership.role == Role.ORG_ADMIN and list(membership.sites.all()) == [site]
        event = AuditEvent.objects.get(action=AuditAction.PERMISSION_CHANGED)
        assert event.organization == organization and event.target_id == str(newcomer.pk)
        assert event.target_type == "accounts.user"
        assert event.details["change"] == "membership_created"
        assert (event.details["role"], event.details["sites"]) == ("org_admin", [str(site.pk)])

    def test_role_defaults_to_viewer(self, admin_client, organization):
        newcomer = UserFactory()
        response = admin_client.post(members_url(organization), {"user": str(newcomer.pk)}, format="json")
        assert response.status_code == 201 and response.json()["role"] == "viewer"

    def test_org_admin_adds_a_user_it_administers_elsewhere(self, client_as, organization, other_organization):
        client, admin = client_as(Role.ORG_ADMIN)
        MembershipFactory(user=admin, organization=other_organization, role=Role.ORG_ADMIN)
        colleague = member(other_organization)
        response = client.post(members_url(organization), {"user": str(colleague.pk), "role": "site_admin"})
        assert response.status_code == 201, response.content
        assert Membership.objects.get(user=colleague, organization=organization).role == Role.SITE_ADMIN

    def test_org_admin_cannot_add_a_user_it_cannot_see(self, client_as, organization, other_organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        for user in (member(other_organization), UserFactory()):
            error = error_of(client.post(members_url(organization), {"user": str(user.pk), "role": "viewer"}), 422)
            assert error["details"][0]["field"] == "body.user"

    def test_org_admin_cannot_add_a_member_with_its_own_role(self, client_as, organization, other_organization):
        client, admin = client_as(Role.ORG_ADMIN)
        MembershipFactory(user=admin, organization=other_organization, role=Role.ORG_ADMIN)
        colleague = member(other_organization)
        response = client.post(members_url(organization), {"user": str(colleague.pk), "role": "org_admin"})
        assert "below your own (org_admin)" in error_of(response, 403)["message"]
        assert not Membership.objects.filter(user=colleague, organization=organization).exists()
        assert not AuditEvent.objects.exists()

    def test_role_escalation_is_refused_with_a_clear_message(self, client_as, organization):
        client, admin = client_as(Role.ORG_ADMIN)
        viewer = member(organization)
        response = client.patch(members_url(organization, viewer), {"role": "org_admin"}, format="json")
        error = error_of(response, 403)
        assert error["message"] == (
            f"Permission denied: you may only grant roles below your own (org_admin) "
            f"in organization '{organization.slug}'"
        )
        assert Membership.objects.get(user=viewer).role == Role.VIEWER
        assert not AuditEvent.objects.exists()

    def test_unknown_role_is_422(self, admin_client, organization):
        viewer = member(organization)
        error = error_of(admin_client.patch(members_url(organization, viewer), {"role": "root"}, format="json"), 422)
        assert error["details"][0]["field"] == "body.role"

    def test_sites_of_another_organization_are_422(self, client_as, organization, other_organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        viewer = member(organization)
        foreign = SiteFactory(organization=other_organization)
        response = client.patch(members_url(organization, viewer), {"sites": [str(foreign.pk)]}, format="json")
        error = error_of(response, 422)
        assert error["details"][0]["field"].startswith("body.sites")
        assert not Membership.objects.get(user=viewer).sites.exists()

    def test_duplicate_membership_is_409(self, admin_client, organization):
        viewer = member(organization)
        error_of(admin_client.post(members_url(organization), {"user": str(viewer.pk), "role": "operator"}), 409)

    def test_role_and_site_change_is_audited(self, client_as, organization):
        client, admin = client_as(Role.ORG_ADMIN)
        site = SiteFactory(organization=organization)
        operator = member(organization, Role.OPERATOR)
        response = client.patch(
            members_url(organization, operator), {"role": "network_admin", "sites": [str(site.pk)]}, format="json"
        )
        assert response.status_code == 200, response.content
        assert (response.json()["role"], response.json()["sites"]) == ("network_admin", [str(site.pk)])
        event = AuditEvent.objects.get(action=AuditAction.PERMISSION_CHANGED)
        assert event.actor == admin and event.organization == organization
        assert event.details["role"] == {"from": "operator", "to": "network_admin"}
        assert event.details["sites"] == {"from": [], "to": [str(site.pk)]}

    def test_no_op_patch_writes_no_audit_event(self, client_as, organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        operator = member(organization, Role.OPERATOR)
        assert client.patch(members_url(organization, operator), {"role": "operator"}).status_code == 200
        assert not AuditEvent.objects.exists()

    def test_user_of_a_membership_cannot_be_swapped(self, admin_client, organization):
        viewer, other = member(organization), UserFactory()
        admin_client.patch(members_url(organization, viewer), {"user": str(other.pk)}, format="json")
        assert Membership.objects.filter(organization=organization, user=viewer).exists()

    def test_org_admin_cannot_touch_a_peer_or_itself(self, client_as, organization):
        client, admin = client_as(Role.ORG_ADMIN)
        peer = member(organization, Role.ORG_ADMIN)
        for target in (peer, admin):
            message = error_of(client.patch(members_url(organization, target), {"role": "viewer"}), 403)["message"]
            assert "not below your own" in message
            error_of(client.delete(members_url(organization, target)), 403)
        assert Membership.objects.filter(organization=organization, role=Role.ORG_ADMIN).count() == 2

    def test_org_admin_removes_a_lower_member(self, client_as, organization):
        client, admin = client_as(Role.ORG_ADMIN)
        site_admin = member(organization, Role.SITE_ADMIN)
        assert client.delete(members_url(organization, site_admin)).status_code == 204
        assert not Membership.objects.filter(user=site_admin).exists()
        assert User.objects.filter(pk=site_admin.pk).exists()  # the account stays
        event = AuditEvent.objects.get(action=AuditAction.PERMISSION_CHANGED)
        assert event.details == {
            "change": "membership_deleted",
            "user_id": str(site_admin.pk),
            "username": site_admin.username,
            "role": "site_admin",
            "sites": [],
        }

    def test_superuser_demotes_an_org_admin(self, admin_client, organization):
        boss = member(organization, Role.ORG_ADMIN)
        assert admin_client.patch(members_url(organization, boss), {"role": "viewer"}).status_code == 200
        assert Membership.objects.get(user=boss).role == Role.VIEWER

    def test_site_limited_admin_grants_only_within_its_sites(self, client_as, organization):
        mine, theirs = SiteFactory(organization=organization), SiteFactory(organization=organization)
        client, _admin = client_as(Role.ORG_ADMIN, sites=[mine])
        viewer = member(organization, sites=[mine])
        ok = client.patch(members_url(organization, viewer), {"sites": [str(mine.pk)], "role": "operator"})
        assert ok.status_code == 200, ok.content
        for sites in ([str(theirs.pk)], []):
            response = client.patch(members_url(organization, viewer), {"sites": sites}, format="json")
            assert "within your own grant" in error_of(response, 403)["message"]
        everywhere = member(organization)
        error_of(client.delete(members_url(organization, everywhere)), 403)


# -- audit --------------------------------------------------------------------------------------------------------


def audit_event(organization, action=AuditAction.PERMISSION_CHANGED, actor=None, **fields):
    return AuditEvent.objects.create(
        organization=organization, action=action, actor=actor, actor_label=actor.username if actor else "", **fields
    )


class TestAudit:
    def test_fields_and_newest_first(self, admin_client, organization):
        older = audit_event(organization, target_type="accounts.user", target_id="x", details={"k": "v"})
        newer = audit_event(organization)
        AuditEvent.objects.filter(pk=older.pk).update(created=timezone.now() - timedelta(hours=1))
        body = admin_client.get("/api/v1/audit/").json()
        assert set(body) == {"items", "total", "page", "per_page"}
        assert [item["id"] for item in body["items"]] == [str(newer.pk), str(older.pk)]
        assert set(body["items"][1]) == AUDIT_FIELDS
        assert body["items"][1]["details"] == {"k": "v"} and body["items"][1]["organization_id"] == str(organization.pk)
        assert admin_client.get(f"/api/v1/audit/{older.pk}/").json()["target_type"] == "accounts.user"

    def test_superuser_sees_every_event(self, admin_client, organization, other_organization):
        events = [audit_event(organization), audit_event(other_organization), audit_event(None)]
        assert set(ids(admin_client.get("/api/v1/audit/"))) == {str(event.pk) for event in events}

    def test_org_admin_sees_only_its_organizations_events(self, client_as, organization, other_organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        own = audit_event(organization)
        foreign = audit_event(other_organization)
        global_event = audit_event(None, action=AuditAction.LOGIN)
        assert ids(client.get("/api/v1/audit/")) == [str(own.pk)]
        assert client.get(f"/api/v1/audit/{own.pk}/").status_code == 200
        error_of(client.get(f"/api/v1/audit/{foreign.pk}/"), 404)
        error_of(client.get(f"/api/v1/audit/{global_event.pk}/"), 404)

    @pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.NETWORK_ADMIN, Role.SITE_ADMIN])
    def test_other_roles_get_403(self, client_as, organization, role):
        client, _user = client_as(role)
        event = audit_event(organization)
        assert "user:admin" in error_of(client.get("/api/v1/audit/"), 403)["message"]
        error_of(client.get(f"/api/v1/audit/{event.pk}/"), 403)

    def test_read_only(self, admin_client, organization):
        event = audit_event(organization)
        error_of(admin_client.post("/api/v1/audit/", {"action": "login"}), 405)
        error_of(admin_client.patch(f"/api/v1/audit/{event.pk}/", {"action": "login"}), 405)
        error_of(admin_client.delete(f"/api/v1/audit/{event.pk}/"), 405)

    def test_filters(self, admin_client, organization, other_organization, make_user):
        actor = make_user(role=None)
        login = audit_event(organization, action=AuditAction.LOGIN, actor=actor)
        change = audit_event(other_organization, action=AuditAction.USER_CHANGED)
        old = audit_event(organization, action=AuditAction.USER_CHANGED)
        AuditEvent.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=2))

        def query(**params):
            return set(ids(admin_client.get("/api/v1/audit/?" + urlencode(params))))

        assert query(action="login") == {str(login.pk)}
        assert query(action="user_changed") == {str(change.pk), str(old.pk)}
        assert query(organization_id=other_organization.pk) == {str(change.pk)}
        assert query(actor_id=actor.pk) == {str(login.pk)}
        cutoff = (timezone.now() - timedelta(days=1)).isoformat()
        assert query(since=cutoff) == {str(login.pk), str(change.pk)}
        assert query(until=cutoff) == {str(old.pk)}
        assert query(since="2000-01-01T00:00:00Z", action="user_changed", organization_id=organization.pk) == {
            str(old.pk)
        }
        for bad in ({"since": "yesterday"}, {"action": "nope"}, {"actor_id": "x"}):
            error = error_of(admin_client.get("/api/v1/audit/?" + urlencode(bad)), 422)
            assert error["details"][0]["field"] == f"query.{next(iter(bad))}"

    def test_directory_changes_reach_the_right_trails(self, client_as, admin_client, organization, other_organization):
        client, _admin = client_as(Role.ORG_ADMIN)
        other_client, _other_admin = client_as(Role.ORG_ADMIN, org=other_organization)
        viewer = member(organization)
        client.patch(members_url(organization, viewer), {"role": "operator"}, format="json")
        own = ids(client.get("/api/v1/audit/?action=permission_changed"))
        assert len(own) == 1
        assert ids(other_client.get("/api/v1/audit/")) == []
        assert ids(admin_client.get("/api/v1/audit/")) == own


# -- admin --------------------------------------------------------------------------------------------------------


class TestAdminSite:
    @pytest.fixture
    def browser(self, superuser):
        client = Client()
        client.force_login(superuser)
        return client

    @pytest.mark.parametrize("model", ["organization", "user", "membership", "site", "apikey", "auditevent"])
    def test_changelists_load(self, browser, organization, model):
        assert browser.get(f"/admin/accounts/{model}/").status_code == 200

    def test_change_pages_load_and_hide_secrets(self, browser, organization, superuser):
        site = SiteFactory(organization=organization)
        viewer = member(organization, sites=[site])
        key = ApiKey.objects.create(user=viewer, name="ci", prefix="nfk_abc", secret_hash="f" * 64)
        event = audit_event(organization, actor=superuser)
        for path in (
            f"/admin/accounts/organization/{organization.pk}/change/",
            f"/admin/accounts/user/{viewer.pk}/change/",
            f"/admin/accounts/site/{site.pk}/change/",
            f"/admin/accounts/membership/{viewer.memberships.get().pk}/change/",
            f"/admin/accounts/apikey/{key.pk}/change/",
            f"/admin/accounts/auditevent/{event.pk}/change/",
        ):
            response = browser.get(path)
            assert response.status_code == 200, path
            assert b"f" * 64 not in response.content
            assert b"secret_hash" not in response.content
            assert b"mfa_secret" not in response.content

    def test_add_pages(self, browser):
        for model in ("organization", "user", "membership", "site"):
            assert browser.get(f"/admin/accounts/{model}/add/").status_code == 200
        assert browser.get("/admin/accounts/apikey/add/").status_code == 403
        assert browser.get("/admin/accounts/auditevent/add/").status_code == 403

    def test_audit_events_cannot_be_changed_or_deleted(self, browser, organization):
        event = audit_event(organization, details={"k": "v"})
        browser.post(f"/admin/accounts/auditevent/{event.pk}/change/", {"action": "login"})
        assert browser.post(f"/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
        event.refresh_from_db()
        assert event.action == AuditAction.PERMISSION_CHANGED

    def test_admin_creates_a_user_with_email(self, browser):
        response = browser.post(
            "/admin/accounts/user/add/",
            {
                "username": "adminmade",
                "email": "adminmade@example.com",
                "usable_password": "true",
                "password1": STRONG_PASSWORD,
                "password2": STRONG_PASSWORD,
            },
        )
        assert response.status_code == 302, response.content
        user = User.objects.get(username="adminmade")
        assert user.email == "adminmade@example.com" and user.check_password(STRONG_PASSWORD)

    def test_membership_sites_must_belong_to_its_organization(self, browser, organization, other_organization):
        viewer = UserFactory()
        foreign = SiteFactory(organization=other_organization)
        response = browser.post(
            "/admin/accounts/membership/add/",
            {"user": viewer.pk, "organization": organization.pk, "role": "viewer", "sites": [foreign.pk]},
        )
        assert response.status_code == 200  # the form is shown again with the error
        assert not Membership.objects.filter(user=viewer).exists()
