"""The conventions every API surface shares, checked over HTTP through the real middleware stack."""

import json
import logging
import re
import uuid

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from netfleet.accounts.factories import OrganizationFactory, SiteFactory
from netfleet.accounts.roles import Role
from netfleet.core.api.exceptions import exception_handler
from netfleet.core.exceptions import Unavailable

pytestmark = [pytest.mark.django_db, pytest.mark.urls("netfleet.core.tests.urls")]

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


def assert_envelope(response, code, message=None):
    assert response.status_code == code, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"]
    assert response["X-Request-ID"] in error["request_id"]
    if message is not None:
        assert error["message"] == message
    return error


class TestErrorEnvelope:
    def test_401_without_credentials(self, api_client):
        response = api_client.get("/api/v1/sites/")
        assert_envelope(response, 401)
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_401_with_garbage_token(self, api_client):
        api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
        assert_envelope(api_client.get("/api/v1/sites/"), 401)

    def test_404_unknown_route(self, api_client):
        assert_envelope(api_client.get("/api/v1/no-such-thing/"), 404, "Not found")
        assert_envelope(api_client.post("/api/v1/no/such/thing", {}), 404, "Not found")

    def test_404_unknown_object(self, admin_client):
        assert_envelope(admin_client.get(f"/api/v1/sites/{uuid.uuid4()}/"), 404)
        assert_envelope(admin_client.get("/api/v1/sites/not-a-uuid/"), 404)

    def test_405(self, api_client):
        error = assert_envelope(api_client.delete("/api/v1/health/"), 405)
        assert "DELETE" in error["message"]

    def test_422_lists_field_details(self, admin_client):
        error = assert_envelope(admin_client.post("/api/v1/sites/", {"slug": "has spaces"}, format="json"), 422)
        assert error["message"] == "Validation error"
        by_field = {item["field"]: item for item in error["details"]}
        assert by_field["body.name"]["type"] == "required"
        assert by_field["body.organization_id"]["type"] == "required"
        assert by_field["body.slug"]["type"] == "invalid"
        assert all(set(item) == {"field", "message", "type"} for item in error["details"])

    def test_422_nested_paths(self, admin_client):
        payload = {"listen_port": 70000, "interfaces": [{"name": "eth0"}, {"name": "toolongname"}]}
        error = assert_envelope(admin_client.post("/api/v1/test/validate/", payload, format="json"), 422)
        fields = {item["field"]: item["type"] for item in error["details"]}
        assert fields == {"body.listen_port": "max_value", "body.interfaces[1].name": "max_length"}

    def test_400_malformed_json(self, admin_client):
        response = admin_client.post("/api/v1/sites/", "{not json", content_type="application/json")
        assert_envelope(response, 400)

    def test_domain_error_keeps_its_status(self, admin_client):
        assert_envelope(admin_client.post("/api/v1/test/conflict/", {}, format="json"), 409, "slug already exists")

    def test_unavailable_says_when_to_retry(self):
        response = exception_handler(Unavailable("Storage is behind"), {"request": None})
        assert (response.status_code, response["Retry-After"]) == (503, "10")
        assert response.data["error"]["message"] == "Storage is behind"

    def test_500_in_api_view_hides_the_exception(self, admin_client, caplog):
        with caplog.at_level(logging.ERROR, logger="netfleet.errors"):
            response = admin_client.get("/api/v1/test/explode/")
        assert_envelope(response, 500, "Internal server error")
        assert b"secret-token" not in response.content and b"Traceback" not in response.content
        assert any(record.exc_info for record in caplog.records)  # the operator still gets the traceback

    def test_500_outside_drf_uses_the_envelope(self):
        client = Client(raise_request_exception=False)
        response = client.get("/api/v1/test/plain-error/")
        assert_envelope(response, 500, "Internal server error")
        assert b"secret-token" not in response.content

    def test_non_api_paths_keep_django_pages(self):
        response = Client().get("/no-such-page/")
        assert response.status_code == 404
        assert not response["Content-Type"].startswith("application/json")


class TestRequestId:
    def test_generated_when_absent(self, api_client):
        response = api_client.get("/api/v1/health/")
        assert GENERATED_ID.match(response["X-Request-ID"])

    def test_client_id_is_echoed_and_prefixed_in_errors_and_logs(self, api_client, caplog):
        with caplog.at_level(logging.INFO, logger="netfleet.request"):
            response = api_client.get("/api/v1/sites/", HTTP_X_REQUEST_ID="my-trace_abc123")
        assert response["X-Request-ID"] == "my-trace_abc123"
        assert response.json()["error"]["request_id"] == "ext-my-trace_abc123"
        request_logs = [r for r in caplog.records if r.name == "netfleet.request"]
        assert request_logs and request_logs[-1].request_id == "ext-my-trace_abc123"

    @pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon", "ünïcode"])
    def test_invalid_id_is_replaced(self, api_client, bad):
        response = api_client.get("/api/v1/health/", HTTP_X_REQUEST_ID=bad)
        assert GENERATED_ID.match(response["X-Request-ID"])

    def test_logs_are_json_lines_with_the_request_id(self, api_client, caplog):
        with caplog.at_level(logging.INFO, logger="netfleet.request"):
            api_client.get("/api/v1/health/", HTTP_X_REQUEST_ID="json-log-check")
        console = next(h for h in logging.getLogger().handlers if type(h.formatter).__name__ == "JsonFormatter")
        line = console.format(caplog.records[-1])
        assert "\n" not in line
        entry = json.loads(line)
        assert entry["request_id"] == "ext-json-log-check"
        assert entry["status"] == 200 and entry["logger"] == "netfleet.request" and entry["level"] == "INFO"


class TestTrailingSlash:
    @pytest.mark.parametrize("path", ["/api/v1/sites", "/api/v1/sites/"])
    def test_get_both_ways_without_redirect(self, admin_client, path):
        assert admin_client.get(path).status_code == 200

    @pytest.mark.parametrize("suffix", ["", "/"])
    def test_post_both_ways_without_redirect(self, admin_client, suffix):
        org = OrganizationFactory()
        response = admin_client.post(
            "/api/v1/sites" + suffix, {"organization_id": str(org.pk), "name": "HQ", "slug": "hq"}, format="json"
        )
        assert response.status_code == 201, response.content

    def test_detail_without_slash(self, admin_client):
        site = SiteFactory()
        assert admin_client.get(f"/api/v1/sites/{site.pk}").json()["id"] == str(site.pk)


class TestPagination:
    def test_items_shape(self, admin_client):
        org = OrganizationFactory()
        SiteFactory.create_batch(5, organization=org)
        body = admin_client.get("/api/v1/sites/?page=2&page_size=2").json()
        assert set(body) == {"items", "total", "page", "per_page"}
        assert (body["total"], body["page"], body["per_page"], len(body["items"])) == (5, 2, 2, 2)

    def test_per_page_is_a_synonym(self, admin_client):
        SiteFactory.create_batch(3)
        body = admin_client.get("/api/v1/sites/?per_page=1").json()
        assert (body["per_page"], len(body["items"]), body["total"]) == (1, 1, 3)

    def test_results_shape(self, admin_client):
        for n in range(3):
            OrganizationFactory(slug=f"shape-{n}")
        body = admin_client.get("/api/v1/test/results/?page_size=2").json()
        assert set(body) == {"count", "next", "previous", "results"}
        assert body["count"] == 3 and len(body["results"]) == 2 and body["previous"] is None
        assert "page=2" in body["next"]
        last = admin_client.get(body["next"]).json()
        assert len(last["results"]) == 1 and last["next"] is None and last["previous"]

    def test_empty_list_is_page_one(self, admin_client):
        body = admin_client.get("/api/v1/sites/").json()
        assert body == {"items": [], "total": 0, "page": 1, "per_page": 50}

    def test_out_of_range_page(self, admin_client):
        SiteFactory()
        assert_envelope(admin_client.get("/api/v1/sites/?page=3"), 404)

    @pytest.mark.parametrize("query", ["page_size=0", "page_size=abc", "per_page=100000", "page=0", "page=x"])
    def test_bad_paging_parameters(self, admin_client, query):
        error = assert_envelope(admin_client.get(f"/api/v1/sites/?{query}"), 422)
        assert error["details"][0]["field"].startswith("query.")


class TestBodyLimit:
    def test_declared_content_length_over_limit_is_refused_unread(self, admin_client):
        # The body sent is tiny: a 413 proves the answer came from the header, before reading.
        response = admin_client.generic(
            "POST", "/api/v1/sites/", b"{}", content_type="application/json", CONTENT_LENGTH=str(2 * 1024 * 1024)
        )
        assert response.status_code == 413
        assert response.json() == {"detail": "request body exceeds 1048576-byte limit"}

    def test_at_limit_is_accepted(self, admin_client):
        body = b'{"x": "' + b"a" * (1024 * 1024 - 9) + b'"}'
        assert len(body) == 1024 * 1024
        assert admin_client.post("/api/v1/test/validate/", body, content_type="application/json").status_code == 422

    def test_upload_view_declares_a_larger_limit(self, admin_client):
        body = b"a" * (2 * 1024 * 1024)
        response = admin_client.post("/api/v1/test/upload/", body, content_type="application/octet-stream")
        assert response.status_code == 200 and response.json() == {"received": len(body)}
        response = admin_client.generic(
            "POST", "/api/v1/test/upload/", b"", content_type="application/octet-stream", CONTENT_LENGTH="5000000"
        )
        assert response.json() == {"detail": "request body exceeds 4194304-byte limit"}

    @override_settings(NETFLEET_MAX_BODY_SIZE=100)
    def test_limit_is_configurable(self, admin_client):
        response = admin_client.post("/api/v1/test/validate/", {"listen_port": "1" * 200}, format="json")
        assert response.json() == {"detail": "request body exceeds 100-byte limit"}


class TestDocs:
    def test_openapi_spec(self, api_client):
        response = api_client.get("/api/v1/openapi.json")
        assert response.status_code == 200
        spec = json.loads(response.content)
        assert spec["openapi"].startswith("3.1")
        assert "/api/v1/sites/" in spec["paths"]

    @pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/"])
    def test_ui_pages_are_served_offline(self, path):
        client = Client()
        response = client.get(path)
        assert response.status_code == 200
        html = response.content.decode()
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets, html
        for asset in assets:
            assert not asset.startswith(("http://", "https://", "//")), f"{asset} would need the network"
            if asset.startswith("/static/"):
                static = client.get(asset)
                assert static.status_code == 200, asset

    @override_settings(ENABLE_DOCS=False)
    @pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/", "/api/v1/openapi.json"])
    def test_disabled_docs_answer_404(self, api_client, path):
        assert_envelope(api_client.get(path), 404)

    def test_browsable_api(self, make_user):
        user = make_user(role=None, superuser=True)
        client = Client()
        client.force_login(user)
        response = client.get("/api/v1/sites/", HTTP_ACCEPT="text/html")
        assert response.status_code == 200 and b"<html" in response.content

    def test_admin_login_page(self):
        assert Client().get("/admin/login/").status_code == 200


class TestHealth:
    def test_healthy(self, api_client):
        response = api_client.get("/api/v1/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok", "broker": "ok"}}

    @override_settings(CELERY_BROKER_URL="redis://127.0.0.1:9/0")  # nothing listens on the discard port
    def test_unreachable_broker_is_503(self, api_client):
        response = api_client.get("/api/v1/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "degraded" and body["checks"]["broker"].startswith("error")
        assert body["checks"]["database"] == "ok"


class TestTenancy:
    def test_other_tenants_objects_are_404(self, client_as, organization, other_organization):
        client, _ = client_as(Role.ORG_ADMIN)
        foreign = SiteFactory(organization=other_organization)
        own = SiteFactory(organization=organization)
        assert_envelope(client.get(f"/api/v1/sites/{foreign.pk}/"), 404)
        assert_envelope(client.patch(f"/api/v1/sites/{foreign.pk}/", {"name": "x"}, format="json"), 404)
        assert_envelope(client.delete(f"/api/v1/sites/{foreign.pk}/"), 404)
        assert [item["id"] for item in client.get("/api/v1/sites/").json()["items"]] == [str(own.pk)]

    def test_cannot_create_in_another_tenant(self, client_as, other_organization):
        client, _ = client_as(Role.ORG_ADMIN)
        response = client.post(
            "/api/v1/sites/", {"organization_id": str(other_organization.pk), "name": "x", "slug": "x"}, format="json"
        )
        error = assert_envelope(response, 422)
        assert error["details"][0]["field"] == "body.organization_id"

    def test_read_only_role_gets_403_on_write(self, client_as, organization):
        client, _ = client_as(Role.VIEWER)
        site = SiteFactory(organization=organization)
        assert client.get(f"/api/v1/sites/{site.pk}/").status_code == 200
        error = assert_envelope(client.patch(f"/api/v1/sites/{site.pk}/", {"name": "y"}, format="json"), 403)
        assert "controller:write" in error["message"]

    def test_site_limited_member_sees_only_granted_sites(self, client_as, organization):
        granted, hidden = SiteFactory(organization=organization), SiteFactory(organization=organization)
        client, _ = client_as(Role.OPERATOR, sites=[granted])
        assert [s["id"] for s in client.get("/api/v1/sites/").json()["items"]] == [str(granted.pk)]
        assert_envelope(client.get(f"/api/v1/sites/{hidden.pk}/"), 404)

    def test_duplicate_slug_is_409(self, client_as, organization):
        client, _ = client_as(Role.ORG_ADMIN)
        SiteFactory(organization=organization, slug="hq")
        response = client.post(
            "/api/v1/sites/", {"organization_id": str(organization.pk), "name": "HQ", "slug": "hq"}, format="json"
        )
        assert_envelope(response, 409)


def test_unauthenticated_client_is_not_an_admin():
    assert APIClient().get("/api/v1/sites/").status_code == 401
