"""Device coordinates (users, and the device itself with `?key=`) and the GeoJSON map of locations with devices."""

import pytest

from netfleet.accounts.roles import Role
from netfleet.controller.factories import make_device
from netfleet.geo import services
from netfleet.geo.models import Location

from .helpers import POINT, error_of, fields_of

pytestmark = pytest.mark.django_db

GEOJSON = "/api/v1/controller/location/geojson/"
MOVED = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [9.19, 45.4642]}}


def url(device):
    return f"/api/v1/controller/device/{device.pk}/coordinates/"


def place(device, *, name="Bus 42", is_mobile=True, geometry=POINT):
    location = services.create_location(
        organization=device.organization, name=name, is_mobile=is_mobile, geometry=geometry
    )
    services.set_device_location(device=device, location=location)
    return location


class TestCoordinatesAsUser:
    def test_get_feature(self, viewer, organization):
        device = make_device(organization)
        location = place(device, is_mobile=False)
        body = viewer.get(url(device)).json()
        assert body["type"] == "Feature" and body["geometry"] == POINT and body["id"] == str(location.pk)
        assert body["properties"]["name"] == "Bus 42" and body["properties"]["device"] == str(device.pk)

    def test_put(self, operator, organization):
        device = make_device(organization)
        location = place(device, is_mobile=False)
        response = operator.put(url(device), MOVED, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["geometry"] == MOVED["geometry"]
        location.refresh_from_db()
        assert location.geometry == MOVED["geometry"]

    def test_bare_point_is_accepted(self, operator, organization):
        device = make_device(organization)
        place(device)
        response = operator.put(url(device), MOVED["geometry"], format="json")
        assert response.status_code == 200 and response.json()["geometry"] == MOVED["geometry"]

    @pytest.mark.parametrize(
        "payload",
        [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [500, 1]}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": "nope"}},
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[1, 2], [3, 4]]}},
            {"type": "Feature"},
            {"type": "Polygon", "coordinates": []},
        ],
    )
    def test_bad_coordinates(self, operator, organization, payload):
        device = make_device(organization)
        location = place(device)
        error = error_of(operator.put(url(device), payload, format="json"), 422)
        assert "body.geometry" in fields_of(error)
        location.refresh_from_db()
        assert location.geometry == POINT

    def test_no_location_is_404(self, viewer, organization):
        error_of(viewer.get(url(make_device(organization))), 404)

    def test_other_tenant_is_404(self, operator, other_organization):
        device = make_device(other_organization)
        place(device)
        error_of(operator.get(url(device)), 404)
        error_of(operator.put(url(device), MOVED, format="json"), 404)

    def test_viewer_cannot_move(self, viewer, organization):
        device = make_device(organization)
        place(device)
        error_of(viewer.put(url(device), MOVED, format="json"), 403)

    def test_anonymous_without_key_is_401(self, api_client, organization):
        device = make_device(organization)
        place(device)
        error_of(api_client.get(url(device)), 401)


class TestCoordinatesWithDeviceKey:
    def test_own_key_moves_a_mobile_location(self, api_client, organization):
        device = make_device(organization)
        location = place(device)
        response = api_client.put(f"{url(device)}?key={device.key}", MOVED, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["geometry"] == MOVED["geometry"]
        location.refresh_from_db()
        assert location.geometry == MOVED["geometry"]
        assert api_client.get(f"{url(device)}?key={device.key}").json()["geometry"] == MOVED["geometry"]

    def test_mobile_location_without_coordinates_yet(self, api_client, organization):
        device = make_device(organization)
        place(device, geometry=None)
        assert api_client.get(f"{url(device)}?key={device.key}").json()["geometry"] is None
        response = api_client.put(f"{url(device)}?key={device.key}", MOVED, format="json")
        assert response.status_code == 200 and response.json()["geometry"] == MOVED["geometry"]

    def test_key_works_whatever_other_credentials(self, api_client, organization):
        device = make_device(organization)
        place(device)
        api_client.credentials(HTTP_AUTHORIZATION="Bearer garbage")
        assert api_client.put(f"{url(device)}?key={device.key}", MOVED, format="json").status_code == 200

    def test_another_devices_key_is_refused(self, api_client, organization):
        device, other = make_device(organization), make_device(organization)
        location = place(device)
        place(other, name="Other bus")
        error_of(api_client.put(f"{url(device)}?key={other.key}", MOVED, format="json"), 403)
        error_of(api_client.get(f"{url(device)}?key={other.key}"), 403)
        error_of(api_client.put(f"{url(device)}?key=", MOVED, format="json"), 403)
        location.refresh_from_db()
        assert location.geometry == POINT

    def test_key_of_a_device_in_another_organization(self, api_client, organization, other_organization):
        device, foreign = make_device(organization), make_device(other_organization)
        place(device)
        error_of(api_client.put(f"{url(device)}?key={foreign.key}", MOVED, format="json"), 403)

    def test_non_mobile_location_is_refused(self, api_client, organization):
        device = make_device(organization)
        location = place(device, is_mobile=False)
        error = error_of(api_client.put(f"{url(device)}?key={device.key}", MOVED, format="json"), 403)
        assert "not mobile" in error["message"]
        location.refresh_from_db()
        assert location.geometry == POINT
        assert api_client.get(f"{url(device)}?key={device.key}").status_code == 200  # reading is harmless

    def test_no_location_is_404(self, api_client, organization):
        device = make_device(organization)
        error_of(api_client.put(f"{url(device)}?key={device.key}", MOVED, format="json"), 404)

    def test_unknown_device_is_404(self, api_client, organization):
        device = make_device(organization)
        error_of(api_client.get(f"/api/v1/controller/device/nope/coordinates/?key={device.key}"), 404)

    def test_id_without_dashes(self, api_client, organization):
        device = make_device(organization)
        place(device)
        response = api_client.get(f"/api/v1/controller/device/{device.pk.hex}/coordinates/?key={device.key}")
        assert response.status_code == 200


class TestGeoJSON:
    def test_only_locations_with_devices_of_the_callers_organizations(self, viewer, organization, other_organization):
        busy = place(make_device(organization), name="Busy", is_mobile=False)
        services.set_device_location(device=make_device(organization), location=busy)
        services.create_location(organization=organization, name="Empty", geometry=POINT)
        place(make_device(other_organization), name="Foreign", is_mobile=False)
        body = viewer.get(GEOJSON).json()
        assert body["type"] == "FeatureCollection" and body["count"] == 1
        [feature] = body["features"]
        assert feature["type"] == "Feature" and feature["id"] == str(busy.pk) and feature["geometry"] == POINT
        assert feature["properties"]["name"] == "Busy" and feature["properties"]["device_count"] == 2
        assert feature["properties"]["organization"] == str(organization.pk)

    def test_filters(self, admin_client, organization, other_organization):
        place(make_device(organization), name="Ours")
        place(make_device(other_organization), name="Theirs")
        assert admin_client.get(GEOJSON).json()["count"] == 2
        for query in (
            {"organization_id": organization.pk},
            {"organization": organization.pk},
            {"organization_slug": organization.slug},
        ):
            [feature] = admin_client.get(GEOJSON, query).json()["features"]
            assert feature["properties"]["name"] == "Ours"
        assert "query.organization_id" in fields_of(error_of(admin_client.get(GEOJSON, {"organization_id": "x"}), 422))

    def test_counts_follow_site_grants(self, client_as, organization):
        from netfleet.accounts.factories import SiteFactory

        site, other_site = SiteFactory(organization=organization), SiteFactory(organization=organization)
        client, _ = client_as(Role.VIEWER, sites=[site])
        shared = place(make_device(organization, site=site), name="Shared")
        services.set_device_location(device=make_device(organization, site=other_site), location=shared)
        place(make_device(organization, site=other_site), name="Not mine")
        [feature] = client.get(GEOJSON).json()["features"]
        assert feature["properties"]["name"] == "Shared" and feature["properties"]["device_count"] == 1

    def test_pages(self, admin_client, organization):
        for n in range(3):
            place(make_device(organization), name=f"L{n}")
        body = admin_client.get(GEOJSON, {"page_size": 2}).json()
        assert body["count"] == 3 and len(body["features"]) == 2 and "page=2" in body["next"]

    def test_is_not_taken_for_a_location_id(self, admin_client):
        assert admin_client.get(GEOJSON.rstrip("/")).json()["type"] == "FeatureCollection"

    def test_anonymous_is_401(self, api_client):
        error_of(api_client.get(GEOJSON), 401)

    def test_location_without_geometry_is_listed_with_null(self, admin_client, organization):
        place(make_device(organization), geometry=None)
        [feature] = admin_client.get(GEOJSON).json()["features"]
        assert feature["geometry"] is None
        assert Location.objects.get().is_mobile
