"""The role matrix the product requires, as a table, and proof over HTTP that endpoints enforce it."""

import pytest

from netfleet.accounts.factories import SiteFactory
from netfleet.accounts.roles import ALL_PERMISSIONS, ROLE_ORDER, Role, permissions_for, role_rank

pytestmark = pytest.mark.django_db

# The required matrix, written out (not derived from roles.py) so a change to the grants fails here.
R = "yes"
_ = ""
MATRIX = {
    #                    viewer operator network_admin site_admin org_admin
    "device:read":      (R,     R,       R,            R,         R),
    "monitoring:read":  (R,     R,       R,            R,         R),
    "device:write":     (_,     R,       R,            R,         R),
    "monitoring:write": (_,     R,       R,            R,         R),
    "discovery:run":    (_,     R,       R,            R,         R),
    "network:write":    (_,     _,       R,            R,         R),
    "firewall:write":   (_,     _,       R,            R,         R),
    "vpn:write":        (_,     _,       R,            R,         R),
    "firmware:write":   (_,     _,       R,            R,         R),
    "pki:write":        (_,     _,       R,            R,         R),
    "hypervisor:write": (_,     _,       _,            R,         R),
    "controller:write": (_,     _,       _,            R,         R),
    "user:admin":       (_,     _,       _,            _,         R),
}  # fmt: skip
ROLES = [Role.VIEWER, Role.OPERATOR, Role.NETWORK_ADMIN, Role.SITE_ADMIN, Role.ORG_ADMIN]


def test_role_order_is_lowest_to_highest():
    assert ROLE_ORDER == ROLES
    assert [role_rank(role) for role in ROLES] == [0, 1, 2, 3, 4]
    assert role_rank("org_admin") == 4  # plain strings (as stored on memberships) rank too


def test_matrix_covers_every_permission():
    assert set(MATRIX) == set(ALL_PERMISSIONS)


@pytest.mark.parametrize("permission", ALL_PERMISSIONS)
@pytest.mark.parametrize("role", ROLES)
def test_role_grants_exactly_the_matrix(role, permission):
    expected = MATRIX[permission][ROLES.index(role)] == R
    assert (permission in permissions_for(role)) is expected


def test_each_role_holds_everything_below_it():
    for lower, higher in zip(ROLES, ROLES[1:], strict=False):
        assert permissions_for(lower) < permissions_for(higher)


def test_unknown_role_is_refused():
    with pytest.raises(ValueError):
        permissions_for("root")


# -- over HTTP ----------------------------------------------------------------------------------------------------

CAN_WRITE_CONTROLLER = {Role.SITE_ADMIN, Role.ORG_ADMIN}


@pytest.mark.parametrize("role", ROLES)
def test_patch_site_needs_controller_write(client_as, organization, role):
    site = SiteFactory(organization=organization, name="before")
    client, _user = client_as(role)
    response = client.patch(f"/api/v1/sites/{site.pk}/", {"name": "after"}, format="json")
    if role in CAN_WRITE_CONTROLLER:
        assert response.status_code == 200, response.content
        assert response.json()["name"] == "after"
    else:
        assert response.status_code == 403, response.content
        assert response.json()["error"]["message"] == "Permission denied: requires 'controller:write'"
        site.refresh_from_db()
        assert site.name == "before"


@pytest.mark.parametrize("role", ROLES)
def test_create_site_needs_controller_write(client_as, organization, role):
    client, _user = client_as(role)
    payload = {"organization_id": str(organization.pk), "name": "POP", "slug": "pop"}
    response = client.post("/api/v1/sites/", payload, format="json")
    assert response.status_code == (201 if role in CAN_WRITE_CONTROLLER else 403), response.content


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_sites(client_as, organization, role):
    site = SiteFactory(organization=organization)
    client, _user = client_as(role)
    assert client.get(f"/api/v1/sites/{site.pk}/").status_code == 200
    body = client.get("/api/v1/sites/").json()
    assert [item["id"] for item in body["items"]] == [str(site.pk)]


@pytest.mark.parametrize("role", ROLES)
def test_user_admin_endpoints_need_user_admin(client_as, organization, role):
    client, _user = client_as(role)
    expected = 200 if role == Role.ORG_ADMIN else 403
    assert client.get(f"/api/v1/organizations/{organization.pk}/members/").status_code == expected
    assert client.get("/api/v1/audit/").status_code == expected


@pytest.mark.parametrize("role", ROLES)
def test_other_organizations_objects_are_404(client_as, other_organization, role):
    foreign_site = SiteFactory(organization=other_organization)
    client, _user = client_as(role)
    for path in (f"/api/v1/sites/{foreign_site.pk}/", f"/api/v1/organizations/{other_organization.pk}/"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == 404
    assert client.get("/api/v1/sites/").json()["total"] == 0


def test_org_admin_writes_to_another_organization_are_404(client_as, other_organization):
    foreign_site = SiteFactory(organization=other_organization)
    client, _user = client_as(Role.ORG_ADMIN)
    assert client.patch(f"/api/v1/sites/{foreign_site.pk}/", {"name": "x"}, format="json").status_code == 404
    assert client.delete(f"/api/v1/sites/{foreign_site.pk}/").status_code == 404
    response = client.patch(f"/api/v1/organizations/{other_organization.pk}/", {"name": "x"}, format="json")
    assert response.status_code == 404
    assert client.get(f"/api/v1/organizations/{other_organization.pk}/members/").status_code == 404


def test_site_limited_operator_sees_only_granted_sites(client_as, organization):
    granted = SiteFactory(organization=organization, name="granted")
    hidden = SiteFactory(organization=organization, name="hidden")
    client, _user = client_as(Role.OPERATOR, sites=[granted])
    assert [item["id"] for item in client.get("/api/v1/sites/").json()["items"]] == [str(granted.pk)]
    assert client.get(f"/api/v1/sites/{granted.pk}/").status_code == 200
    assert client.get(f"/api/v1/sites/{hidden.pk}/").status_code == 404
    # the organization itself stays visible to a site-limited member
    assert client.get(f"/api/v1/organizations/{organization.pk}/").status_code == 200


def test_site_limited_site_admin_writes_only_granted_sites(client_as, organization):
    granted = SiteFactory(organization=organization)
    hidden = SiteFactory(organization=organization)
    client, _user = client_as(Role.SITE_ADMIN, sites=[granted])
    assert client.patch(f"/api/v1/sites/{granted.pk}/", {"name": "ok"}, format="json").status_code == 200
    assert client.patch(f"/api/v1/sites/{hidden.pk}/", {"name": "no"}, format="json").status_code == 404
