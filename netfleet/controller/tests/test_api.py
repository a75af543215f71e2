"""The controller's REST API over HTTP: devices, templates, groups, certificate groups, organization settings,
and the platform's device list."""

import io
import json
import tarfile
import uuid
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError
from django.test import Client
from rest_framework import serializers as drf_serializers

from netfleet.accounts.factories import OrganizationFactory, SiteFactory
from netfleet.accounts.roles import Role
from netfleet.controller import services
from netfleet.controller.api.serializers import (
    DeviceSerializer,
    PlatformDeviceSerializer,
    device_list_page,
    device_list_rows,
)
from netfleet.controller.choices import ConfigStatus
from netfleet.controller.factories import DeviceGroupFactory, TemplateFactory, make_device
from netfleet.controller.models import Config, ConfigTemplate, Device, DeviceGroup, Template
from netfleet.core.api.renderers import JSONRenderer
from netfleet.core.sql import raw_rows

pytestmark = pytest.mark.django_db

DEVICES = "/api/v1/controller/device/"
TEMPLATES = "/api/v1/controller/template/"
GROUPS = "/api/v1/controller/group/"

LAN = {"interfaces": [{"name": "lan", "type": "bridge", "bridge_members": ["eth0"], "mtu": 1500}]}
WIFI = {
    "interfaces": [
        {
            "name": "wlan0",
            "type": "wireless",
            "wireless": {"radio": "radio0", "mode": "access_point", "ssid": "{{ s }}"},
        }
    ]
}
DEVICE_FIELDS = {
    "id",
    "name",
    "organization",
    "site",
    "group",
    "mac_address",
    "key",
    "last_ip",
    "management_ip",
    "model",
    "os",
    "system",
    "notes",
    "hardware_id",
    "is_deactivated",
    "config",
    "created",
    "modified",
}


def error_of(response, code):
    assert response.status_code == code, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["request_id"]
    return error


def fields_of(error):
    return {item["field"]: item["message"] for item in error["details"]}


def files_of(response):
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as tar:
        return {member.name: tar.extractfile(member).read().decode() for member in tar.getmembers() if member.isfile()}


def template_ids(device):
    return [str(link.template_id) for link in ConfigTemplate.objects.filter(config__device=device).order_by("order")]


def mark_applied(*devices):
    Config.objects.filter(device__in=devices).update(status=ConfigStatus.APPLIED)


@pytest.fixture
def operator(client_as):
    return client_as(Role.OPERATOR)[0]


@pytest.fixture
def viewer(client_as):
    return client_as(Role.VIEWER)[0]


class TestDeviceRead:
    def test_list_shape_and_representation(self, viewer, organization):
        template = TemplateFactory(organization=organization, config=LAN)
        device = make_device(organization, name="ap-1", templates=[template], model="WDR4300")
        body = viewer.get(DEVICES).json()
        assert set(body) == {"count", "next", "previous", "results"} and body["count"] == 1
        item = body["results"][0]
        assert set(item) == DEVICE_FIELDS
        assert item["id"] == str(device.pk) and item["organization"] == str(organization.pk)
        assert (item["name"], item["model"], item["mac_address"], item["key"]) == (
            "ap-1",
            "WDR4300",
            device.mac_address,
            device.key,
        )
        assert item["config"] == {
            "status": "modified",
            "error_reason": "",
            "backend": "netjsonconfig.OpenWrt",
            "templates": [str(template.pk)],
            "context": {},
            "config": {},
        }

    def test_fast_representation_matches_the_fields(self, organization):
        site, group = SiteFactory(organization=organization), DeviceGroupFactory(organization=organization)
        template = TemplateFactory(organization=organization)
        make_device(organization, site=site, group=group, templates=[template], management_ip="10.0.0.1", notes="n")
        make_device(organization)
        Device.objects.update(last_ip="192.0.2.7")
        for device in Device.objects.select_related("config"):
            for serializer in (DeviceSerializer(device), PlatformDeviceSerializer(device)):
                generic = drf_serializers.ModelSerializer.to_representation(serializer, device)
                assert json.loads(JSONRenderer().render(generic)) == serializer.data

    def test_list_items_match_the_serializer(self, viewer, organization):
        # the database writes the listed items (PostgreSQL here; SQLite: test_agent_live's
        # test_device_list_items_written_by_sqlite)
        site, group = SiteFactory(organization=organization), DeviceGroupFactory(organization=organization)
        first, second = TemplateFactory(organization=organization), TemplateFactory(organization=organization)
        make_device(organization, site=site, group=group, templates=[second, first], management_ip="10.0.0.1")
        quiet = make_device(organization, notes='"quoted" \\ ünïcode\n')
        Config.objects.filter(device=quiet).update(context={"ssid": "lobby", "n": 1.5}, config=LAN)
        Device.objects.filter(pk=quiet.pk).update(
            is_deactivated=True,
            created=datetime(2026, 11, 22, 6, 29, 21, tzinfo=UTC),  # no microseconds
        )
        Device.objects.update(last_ip="192.0.2.7")
        listed = {item["id"]: item for item in viewer.get(DEVICES).json()["results"]}
        assert len(listed) == 2
        for device in Device.objects.select_related("config"):
            detail = json.loads(JSONRenderer().render(DeviceSerializer(device).data))
            assert listed[str(device.pk)] == detail
        assert listed[str(quiet.pk)]["created"] == "2026-11-22T06:29:21Z"
        assert [str(second.pk), str(first.pk)] == next(
            item["config"]["templates"] for item in listed.values() if item["site"] == str(site.pk)
        )

    def test_retrieve(self, viewer, organization):
        device = make_device(organization, name="ap-2")
        item = viewer.get(f"{DEVICES}{device.pk}/").json()
        assert item["name"] == "ap-2" and item["group"] is None and item["site"] is None

    def test_retrieve_accepts_hex_id(self, viewer, organization):
        device = make_device(organization)
        assert viewer.get(f"{DEVICES}{device.pk.hex}/").json()["id"] == str(device.pk)

    def test_unknown_device_is_404(self, viewer):
        error_of(viewer.get(f"{DEVICES}{uuid.uuid4()}/"), 404)
        error_of(viewer.get(f"{DEVICES}not-a-uuid/"), 404)

    def test_other_organizations_devices_are_hidden(self, operator, organization, other_organization):
        own, foreign = make_device(organization), make_device(other_organization)
        assert [item["id"] for item in operator.get(DEVICES).json()["results"]] == [str(own.pk)]
        for response in (
            operator.get(f"{DEVICES}{foreign.pk}/"),
            operator.patch(f"{DEVICES}{foreign.pk}/", {"name": "x"}),
            operator.put(f"{DEVICES}{foreign.pk}/", {"name": "x", "mac_address": "00:00:00:00:00:01"}),
            operator.delete(f"{DEVICES}{foreign.pk}/?force=true"),
            operator.get(f"{DEVICES}{foreign.pk}/configuration/"),
            operator.post(f"{DEVICES}{foreign.pk}/deactivate/"),
            operator.post(f"{DEVICES}{foreign.pk}/activate/"),
        ):
            error_of(response, 404)
        assert Device.objects.filter(pk=foreign.pk, is_deactivated=False).exists()

    def test_unauthenticated_is_401(self, api_client):
        error_of(api_client.get(DEVICES), 401)

    def test_site_limited_member_sees_only_its_sites(self, client_as, organization):
        granted, hidden = SiteFactory(organization=organization), SiteFactory(organization=organization)
        visible = make_device(organization, site=granted)
        make_device(organization, site=hidden)
        client, _ = client_as(Role.VIEWER, sites=[granted])
        assert [item["id"] for item in client.get(DEVICES).json()["results"]] == [str(visible.pk)]

    def test_site_limited_member_creates_only_in_its_sites(self, client_as, organization):
        granted, other = SiteFactory(organization=organization), SiteFactory(organization=organization)
        client, _ = client_as(Role.OPERATOR, sites=[granted])
        payload = {"name": "s1", "organization": str(organization.pk), "mac_address": "00:00:00:00:02:01"}
        assert "body.site" in fields_of(error_of(client.post(DEVICES, payload), 422))
        assert "body.site" in fields_of(error_of(client.post(DEVICES, {**payload, "site": str(other.pk)}), 422))
        response = client.post(DEVICES, {**payload, "site": str(granted.pk)})
        assert response.status_code == 201 and response.json()["site"] == str(granted.pk)

    def test_a_page_in_one_statement_matches_reading_ids_then_rows(self, organization):
        template = TemplateFactory(organization=organization, config=LAN)
        devices = [make_device(organization, templates=[template] if n % 2 else []) for n in range(5)]
        make_device(OrganizationFactory())
        Config.objects.filter(device=devices[0]).update(status=ConfigStatus.APPLIED)
        everything = Device.objects.order_by("-created")
        querysets = [
            everything,
            everything.filter(organization=organization),
            everything.filter(config__status=ConfigStatus.MODIFIED, organization__slug=organization.slug),
            everything.filter(config__templates=template).distinct(),  # another shape of SQL: read in two steps
            everything.filter(pk__in=[]),  # nothing, known to the ORM
        ]
        for queryset in querysets:
            for page in (slice(0, 2), slice(2, 10)):
                ids = queryset.values_list("pk")[page]
                expected = device_list_rows([row[0] for row in raw_rows(ids)])
                assert device_list_page(ids) == expected
                in_order = queryset.values_list("pk", flat=True)[page]
                assert [json.loads(item)["id"] for item in expected] == [str(pk) for pk in in_order]

    def test_list_query_count_does_not_grow(self, viewer, organization, django_assert_max_num_queries):
        templates = [TemplateFactory(organization=organization, config=LAN) for _ in range(3)]
        group = DeviceGroupFactory(organization=organization)
        site = SiteFactory(organization=organization)
        for _ in range(20):
            make_device(organization, templates=templates, group=group, site=site)
        # auth (session, user, memberships, their sites), count, the page's items (with configs and template links)
        with django_assert_max_num_queries(6):
            body = viewer.get(DEVICES).json()
        assert body["count"] == 20 and all(len(item["config"]["templates"]) == 3 for item in body["results"])


class TestDeviceWrite:
    def test_organization_choices_are_the_callers_on_every_request(
        self, operator, admin_client, organization, other_organization
    ):
        # serializer fields are built once per class and copied per request; the copies are narrowed by access
        def payload(n, org):
            return {"name": f"choice-{n}", "organization": str(org.pk), "mac_address": f"00:00:00:00:09:0{n}"}

        assert "body.organization" in fields_of(error_of(operator.post(DEVICES, payload(1, other_organization)), 422))
        assert admin_client.post(DEVICES, payload(2, other_organization)).status_code == 201
        assert "body.organization" in fields_of(error_of(operator.post(DEVICES, payload(3, other_organization)), 422))
        assert operator.post(DEVICES, payload(4, organization)).status_code == 201

    def test_create(self, operator, organization):
        first = TemplateFactory(organization=organization, config=LAN)
        second = TemplateFactory(organization=organization, config=WIFI, default_values={"s": "x"})
        payload = {
            "name": "edge-1",
            "organization": str(organization.pk),
            "mac_address": "aa-bb-cc-dd-ee-01",
            "model": "RB4011",
            "config": {
                "backend": "netjsonconfig.OpenWrt",
                "templates": [str(second.pk), str(first.pk)],
                "context": {"s": "lobby"},
                "config": {"general": {"hostname": "{{ name }}"}},
            },
        }
        response = operator.post(DEVICES, payload)
        assert response.status_code == 201, response.content
        body = response.json()
        device = Device.objects.get(pk=body["id"])
        assert device.mac_address == "AA:BB:CC:DD:EE:01" == body["mac_address"]
        assert body["config"]["templates"] == [str(second.pk), str(first.pk)] == template_ids(device)
        assert body["config"]["status"] == "modified" and body["config"]["context"] == {"s": "lobby"}
        assert len(body["key"]) >= 16 and device.config.checksum

    def test_create_adds_default_and_required_templates(self, operator, organization):
        required = TemplateFactory(organization=organization, required=True, default=True)
        default = TemplateFactory(organization=organization, default=True)
        TemplateFactory(organization=organization)  # neither
        payload = {"name": "edge-2", "organization": str(organization.pk), "mac_address": "00:00:00:00:00:02"}
        body = operator.post(DEVICES, payload).json()
        assert body["config"]["templates"] == [str(required.pk), str(default.pk)]
        chosen = TemplateFactory(organization=organization)
        payload = {**payload, "name": "edge-3", "mac_address": "00:00:00:00:00:03"}
        body = operator.post(DEVICES, {**payload, "config": {"templates": [str(chosen.pk)]}}).json()
        assert body["config"]["templates"] == [str(required.pk), str(chosen.pk)]

    def test_create_missing_fields(self, operator):
        error = error_of(operator.post(DEVICES, {}), 422)
        assert {"body.name", "body.organization", "body.mac_address"} <= set(fields_of(error))

    def test_create_invalid_name_and_mac(self, operator, organization):
        payload = {"name": "not a hostname!", "organization": str(organization.pk), "mac_address": "zz"}
        assert {"body.name", "body.mac_address"} <= set(fields_of(error_of(operator.post(DEVICES, payload), 422)))

    def test_create_invalid_netjson_names_the_path(self, operator, organization):
        payload = {
            "name": "edge-4",
            "organization": str(organization.pk),
            "mac_address": "00:00:00:00:00:04",
            "config": {"config": {"interfaces": [{"name": "eth0", "type": "ethernet", "mtu": "big"}]}},
        }
        error = error_of(operator.post(DEVICES, payload), 422)
        assert any(field.startswith("body.config.config.interfaces") for field in fields_of(error)), error
        assert not Device.objects.exists()

    def test_create_with_non_object_context(self, operator, organization):
        payload = {
            "name": "edge-5",
            "organization": str(organization.pk),
            "mac_address": "00:00:00:00:00:05",
            "config": {"context": ["not", "an", "object"]},
        }
        assert "body.config.context" in fields_of(error_of(operator.post(DEVICES, payload), 422))

    def test_create_in_another_organization_is_refused(self, operator, other_organization):
        payload = {"name": "edge-6", "organization": str(other_organization.pk), "mac_address": "00:00:00:00:00:06"}
        assert "body.organization" in fields_of(error_of(operator.post(DEVICES, payload), 422))
        assert not Device.objects.exists()

    def test_create_with_another_organizations_template_is_refused(
        self, operator, admin_client, organization, other_organization
    ):
        foreign = TemplateFactory(organization=other_organization)
        payload = {
            "name": "edge-7",
            "organization": str(organization.pk),
            "mac_address": "00:00:00:00:00:07",
            "config": {"templates": [str(foreign.pk)]},
        }
        assert "body.config.templates" in fields_of(error_of(operator.post(DEVICES, payload), 422))
        # a superuser sees every template, and the service refuses the mismatch
        error = error_of(admin_client.post(DEVICES, payload), 422)
        assert "belongs to another organization" in fields_of(error)["body.config.templates"]
        assert not Device.objects.exists()

    def test_create_with_another_organizations_group_or_site_is_refused(
        self, operator, organization, other_organization
    ):
        group, site = DeviceGroupFactory(organization=other_organization), SiteFactory(organization=other_organization)
        payload = {"name": "e8", "organization": str(organization.pk), "mac_address": "00:00:00:00:00:08"}
        assert "body.group" in fields_of(error_of(operator.post(DEVICES, {**payload, "group": str(group.pk)}), 422))
        assert "body.site" in fields_of(error_of(operator.post(DEVICES, {**payload, "site": str(site.pk)}), 422))

    def test_duplicate_name_or_mac_is_409(self, operator, organization):
        make_device(organization, name="Edge-9", mac_address="00:00:00:00:00:09")
        base = {"organization": str(organization.pk)}
        error = error_of(operator.post(DEVICES, {**base, "name": "edge-9", "mac_address": "00:00:00:00:01:09"}), 409)
        assert "name" in error["message"]
        error = error_of(operator.post(DEVICES, {**base, "name": "other", "mac_address": "0000.0000.0009"}), 409)
        assert "MAC" in error["message"]

    @pytest.mark.parametrize(
        ("name", "mac"), [("EDGE-11", "00:00:00:00:00:12"), ("other", "00:00:00:00:00:11")], ids=["name", "mac"]
    )
    def test_a_duplicate_past_the_api_checks_is_refused_by_the_database(self, organization, name, mac):
        # (a concurrent create, or any caller of the service): the constraints hold, nothing is half-stored
        make_device(organization, name="edge-11", mac_address="00:00:00:00:00:11")
        with pytest.raises(IntegrityError):
            services.create_device(organization=organization, name=name, mac_address=mac)
        assert Device.objects.count() == 1 and Config.objects.count() == 1

    def test_same_name_in_another_organization_is_fine(self, operator, organization, other_organization):
        make_device(other_organization, name="edge-10", mac_address="00:00:00:00:00:10")
        payload = {"name": "edge-10", "organization": str(organization.pk), "mac_address": "00:00:00:00:00:10"}
        assert operator.post(DEVICES, payload).status_code == 201

    def test_device_limit_is_409(self, operator, organization):
        settings_row = services.organization_settings(organization)
        settings_row.device_limit = 1
        settings_row.save()
        make_device(organization)
        payload = {"name": "edge-11", "organization": str(organization.pk), "mac_address": "00:00:00:00:00:11"}
        assert "limit" in error_of(operator.post(DEVICES, payload), 409)["message"]

    def test_viewer_reads_but_cannot_write(self, viewer, organization):
        device = make_device(organization)
        assert viewer.get(f"{DEVICES}{device.pk}/").status_code == 200
        payload = {"name": "x", "organization": str(organization.pk), "mac_address": "00:00:00:00:00:12"}
        for response in (
            viewer.post(DEVICES, payload),
            viewer.patch(f"{DEVICES}{device.pk}/", {"name": "renamed"}),
            viewer.put(f"{DEVICES}{device.pk}/", {"name": "renamed", "mac_address": device.mac_address}),
            viewer.delete(f"{DEVICES}{device.pk}/?force=true"),
            viewer.post(f"{DEVICES}{device.pk}/deactivate/"),
        ):
            assert "device:write" in error_of(response, 403)["message"]
        assert Device.objects.get(pk=device.pk).name == device.name

    def test_put(self, operator, organization):
        device = make_device(organization, name="before")
        payload = {"name": "after", "mac_address": device.mac_address, "notes": "rack 4", "management_ip": "10.0.0.9"}
        body = operator.put(f"{DEVICES}{device.pk}/", payload).json()
        assert (body["name"], body["notes"], body["management_ip"]) == ("after", "rack 4", "10.0.0.9")
        device.refresh_from_db()
        assert device.name == "after"

    def test_put_requires_the_fields(self, operator, organization):
        device = make_device(organization)
        assert "body.mac_address" in fields_of(error_of(operator.put(f"{DEVICES}{device.pk}/", {"name": "x"}), 422))

    def test_organization_cannot_change(self, admin_client, organization, other_organization):
        device = make_device(organization)
        admin_client.patch(f"{DEVICES}{device.pk}/", {"organization": str(other_organization.pk)})
        assert Device.objects.get(pk=device.pk).organization_id == organization.pk

    def test_patch_context_marks_config_modified(self, operator, organization):
        template = TemplateFactory(organization=organization, config=WIFI, default_values={"s": "default"})
        device = make_device(organization, templates=[template])
        mark_applied(device)
        body = operator.patch(f"{DEVICES}{device.pk}/", {"config": {"context": {"s": "guest"}}}).json()
        assert body["config"]["status"] == "modified" and body["config"]["context"] == {"s": "guest"}
        assert body["config"]["templates"] == [str(template.pk)]  # untouched when not given
        response = operator.get(f"{DEVICES}{device.pk}/configuration/")
        assert "option ssid 'guest'" in files_of(response)["etc/config/wireless"]

    def test_patch_that_renders_the_same_keeps_applied(self, operator, organization):
        device = make_device(organization)
        mark_applied(device)
        body = operator.patch(f"{DEVICES}{device.pk}/", {"notes": "not rendered"}).json()
        assert body["config"]["status"] == "applied"

    def test_patch_invalid_netjson(self, operator, organization):
        device = make_device(organization)
        payload = {"config": {"config": {"interfaces": [{"name": "eth0", "type": "no-such-type"}]}}}
        error = error_of(operator.patch(f"{DEVICES}{device.pk}/", payload), 422)
        assert any(field.startswith("body.config.config.interfaces") for field in fields_of(error)), error
        assert Device.objects.get(pk=device.pk).config.config == {}


class TestTemplateAssignment:
    """The three curl examples of controller-api.txt: assign, remove, reorder through config.templates."""

    @pytest.fixture
    def setup(self, organization):
        first = TemplateFactory(organization=organization, config=LAN)
        second = TemplateFactory(organization=organization, config=WIFI, default_values={"s": "x"})
        return make_device(organization), first, second

    def patch_templates(self, client, device, ids):
        return client.patch(f"{DEVICES}{device.pk}/", {"config": {"templates": [str(pk) for pk in ids]}})

    def test_assign(self, operator, setup):
        device, first, _ = setup
        response = self.patch_templates(operator, device, [first.pk])
        assert response.status_code == 200, response.content
        assert response.json()["config"]["templates"] == [str(first.pk)] == template_ids(device)

    def test_remove(self, operator, setup):
        device, first, second = setup
        self.patch_templates(operator, device, [first.pk, second.pk])
        body = self.patch_templates(operator, device, []).json()
        assert body["config"]["templates"] == [] == template_ids(device)

    def test_reorder(self, operator, setup):
        device, first, second = setup
        self.patch_templates(operator, device, [first.pk, second.pk])
        mark_applied(device)
        body = self.patch_templates(operator, device, [second.pk, first.pk]).json()
        assert body["config"]["templates"] == [str(second.pk), str(first.pk)] == template_ids(device)

    def test_assignment_changes_the_rendered_configuration(self, operator, setup):
        device, first, _ = setup
        mark_applied(device)
        body = self.patch_templates(operator, device, [first.pk]).json()
        assert body["config"]["status"] == "modified"
        network = files_of(operator.get(f"{DEVICES}{device.pk}/configuration/"))["etc/config/network"]
        assert "option mtu '1500'" in network

    def test_required_template_cannot_be_removed(self, operator, organization, setup):
        device, first, _ = setup
        required = TemplateFactory(organization=organization, required=True, default=True)
        self.patch_templates(operator, device, [first.pk])  # the required template joins, first
        assert template_ids(device) == [str(required.pk), str(first.pk)]
        error = error_of(self.patch_templates(operator, device, [first.pk]), 422)
        assert "Required templates cannot be removed" in fields_of(error)["body.config.templates"]
        assert template_ids(device) == [str(required.pk), str(first.pk)]
        # reordering it is fine
        body = self.patch_templates(operator, device, [first.pk, required.pk]).json()
        assert body["config"]["templates"] == [str(first.pk), str(required.pk)]

    def test_another_organizations_template_is_refused(self, operator, other_organization, setup):
        device, first, _ = setup
        foreign = TemplateFactory(organization=other_organization)
        error = error_of(self.patch_templates(operator, device, [first.pk, foreign.pk]), 422)
        assert "body.config.templates" in fields_of(error)
        assert template_ids(device) == []

    def test_shared_template_can_be_assigned(self, operator, setup):
        device, _, _ = setup
        shared = TemplateFactory(organization=None)
        assert self.patch_templates(operator, device, [shared.pk]).json()["config"]["templates"] == [str(shared.pk)]

    def test_template_of_another_backend_is_refused(self, operator, organization, setup):
        device, _, _ = setup
        other = TemplateFactory(organization=organization, backend="netjsonconfig.OpenWisp", config={})
        error = error_of(self.patch_templates(operator, device, [other.pk]), 422)
        assert "netjsonconfig.OpenWisp" in fields_of(error)["body.config.templates"]

    def test_unknown_template_id(self, operator, setup):
        device, _, _ = setup
        error = error_of(self.patch_templates(operator, device, [uuid.uuid4()]), 422)
        assert "body.config.templates" in fields_of(error)


class TestDeviceLifecycle:
    def test_delete_active_device_needs_force(self, operator, organization):
        device = make_device(organization)
        error = error_of(operator.delete(f"{DEVICES}{device.pk}/"), 409)
        assert "force" in error["message"]
        assert Device.objects.filter(pk=device.pk).exists()
        assert operator.delete(f"{DEVICES}{device.pk}/?force=true").status_code == 204
        assert not Device.objects.filter(pk=device.pk).exists()

    def test_delete_after_deactivation(self, operator, organization):
        device = make_device(organization)
        body = operator.post(f"{DEVICES}{device.pk}/deactivate/").json()
        assert body["is_deactivated"] is True and body["config"]["status"] == "deactivating"
        assert operator.delete(f"{DEVICES}{device.pk}/").status_code == 204

    def test_bad_force_value(self, operator, organization):
        device = make_device(organization)
        error = error_of(operator.delete(f"{DEVICES}{device.pk}/?force=perhaps"), 422)
        assert "query.force" in fields_of(error)

    def test_activate(self, operator, organization):
        device = make_device(organization)
        operator.post(f"{DEVICES}{device.pk}/deactivate/")
        body = operator.post(f"{DEVICES}{device.pk}/activate/").json()
        assert body["is_deactivated"] is False and body["config"]["status"] == "modified"

    def test_configuration_download(self, viewer, organization):
        template = TemplateFactory(organization=organization, config=LAN)
        device = make_device(
            organization, name="ap-7", templates=[template], config={"config": {"general": {"hostname": "{{ name }}"}}}
        )
        response = viewer.get(f"{DEVICES}{device.pk}/configuration/")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/gzip"
        assert response["Content-Disposition"] == 'attachment; filename="ap-7.tar.gz"'
        files = files_of(response)
        assert "option hostname 'ap-7'" in files["etc/config/system"]
        assert "option mtu '1500'" in files["etc/config/network"]
        # the same bytes the agent verifies
        assert services.render_device_archive(device=device) == response.content

    def test_configuration_download_with_gzip_accept_header(self, viewer, organization):
        device = make_device(organization, config={"config": {"general": {"hostname": "ap"}}})
        response = viewer.get(f"{DEVICES}{device.pk}/configuration/", HTTP_ACCEPT="application/gzip")
        assert response.status_code == 200 and "etc/config/system" in files_of(response)
        response = viewer.get(f"{DEVICES}{uuid.uuid4()}/configuration/", HTTP_ACCEPT="application/gzip")
        assert response.status_code == 404 and response.json()["error"]["code"] == 404


class TestGroupTemplatesOnDevices:
    def test_device_joining_a_group_gets_its_templates_after_its_own(self, operator, organization):
        own = TemplateFactory(organization=organization, config=LAN)
        group_template = TemplateFactory(organization=organization, name="z-group", config=WIFI)
        group = DeviceGroupFactory(organization=organization, context={"s": "from-group"})
        group.templates.set([group_template, own])
        payload = {
            "name": "member-1",
            "organization": str(organization.pk),
            "mac_address": "00:00:00:00:01:01",
            "group": str(group.pk),
            "config": {"templates": [str(own.pk)]},
        }
        body = operator.post(DEVICES, payload).json()
        assert body["group"] == str(group.pk)
        assert body["config"]["templates"] == [str(own.pk), str(group_template.pk)]
        files = files_of(operator.get(f"{DEVICES}{body['id']}/configuration/"))
        assert "option ssid 'from-group'" in files["etc/config/wireless"]

    def test_moving_between_groups_swaps_group_templates(self, operator, organization):
        own = TemplateFactory(organization=organization)
        old_only, both, new_only = (TemplateFactory(organization=organization) for _ in range(3))
        old_group, new_group = (
            DeviceGroupFactory(organization=organization),
            DeviceGroupFactory(organization=organization),
        )
        old_group.templates.set([old_only, both])
        new_group.templates.set([both, new_only])
        device = make_device(organization, templates=[own, old_only, both], group=old_group)
        body = operator.patch(f"{DEVICES}{device.pk}/", {"group": str(new_group.pk)}).json()
        assert body["config"]["templates"] == [str(own.pk), str(both.pk), str(new_only.pk)]
        body = operator.patch(f"{DEVICES}{device.pk}/", {"group": None}).json()
        assert body["group"] is None and body["config"]["templates"] == [str(own.pk)]


class TestTemplates:
    def test_list_and_representation(self, viewer, organization):
        template = TemplateFactory(organization=organization, name="lan", config=LAN, tags=["mesh"])
        body = viewer.get(TEMPLATES).json()
        assert set(body) == {"count", "next", "previous", "results"}
        assert body["results"] == [
            {
                "id": str(template.pk),
                "name": "lan",
                "organization": str(organization.pk),
                "backend": "netjsonconfig.OpenWrt",
                "type": "generic",
                "default": False,
                "required": False,
                "config": LAN,
                "default_values": {},
                "tags": ["mesh"],
                "created": body["results"][0]["created"],
                "modified": body["results"][0]["modified"],
                "vpn": None,  # contributed by the VPN app (controller/extensions.py TEMPLATE_FIELDS)
            }
        ]

    def test_page_size(self, viewer, organization):
        for _ in range(3):
            TemplateFactory(organization=organization)
        body = viewer.get(f"{TEMPLATES}?page_size=2&page=2").json()
        assert body["count"] == 3 and len(body["results"]) == 1 and body["next"] is None

    def test_create_needs_network_write(self, client_as, organization):
        payload = {"name": "t", "organization": str(organization.pk), "config": LAN}
        operator, _ = client_as(Role.OPERATOR)
        assert "network:write" in error_of(operator.post(TEMPLATES, payload), 403)["message"]
        network_admin, _ = client_as(Role.NETWORK_ADMIN)
        response = network_admin.post(TEMPLATES, payload)
        assert response.status_code == 201, response.content
        assert Template.objects.get(pk=response.json()["id"]).organization == organization

    def test_create_required_implies_default(self, admin_client, organization):
        payload = {"name": "base", "organization": str(organization.pk), "required": True}
        body = admin_client.post(TEMPLATES, payload).json()
        assert body["required"] is True and body["default"] is True

    def test_create_invalid_netjson_names_the_path(self, admin_client, organization):
        payload = {"name": "bad", "organization": str(organization.pk), "config": {"interfaces": [{"name": "x"}]}}
        error = error_of(admin_client.post(TEMPLATES, payload), 422)
        assert any(field.startswith("body.config") for field in fields_of(error)), error

    def test_create_invalid_choices(self, admin_client, organization):
        payload = {"name": "bad", "organization": str(organization.pk), "backend": "cisco", "type": "x"}
        assert {"body.backend", "body.type"} <= set(fields_of(error_of(admin_client.post(TEMPLATES, payload), 422)))

    def test_duplicate_name_is_409(self, admin_client, organization):
        TemplateFactory(organization=organization, name="dup")
        error_of(admin_client.post(TEMPLATES, {"name": "dup", "organization": str(organization.pk)}), 409)

    def test_shared_templates(self, client_as, admin_client, organization):
        org_admin, _ = client_as(Role.ORG_ADMIN)
        error = error_of(org_admin.post(TEMPLATES, {"name": "shared", "organization": None}), 403)
        assert "superusers" in error["message"]
        assert "body.organization" in fields_of(error_of(org_admin.post(TEMPLATES, {"name": "shared"}), 422))
        response = admin_client.post(TEMPLATES, {"name": "shared", "organization": None})
        assert response.status_code == 201 and response.json()["organization"] is None
        shared_id = response.json()["id"]
        # readable by everyone, writable by superusers only
        assert org_admin.get(f"{TEMPLATES}{shared_id}/").status_code == 200
        error_of(org_admin.patch(f"{TEMPLATES}{shared_id}/", {"name": "mine"}), 403)
        error_of(org_admin.delete(f"{TEMPLATES}{shared_id}/"), 403)
        assert admin_client.patch(f"{TEMPLATES}{shared_id}/", {"name": "ours"}).json()["name"] == "ours"

    def test_other_organizations_templates_are_404(self, client_as, other_organization):
        client, _ = client_as(Role.ORG_ADMIN)
        foreign = TemplateFactory(organization=other_organization)
        error_of(client.get(f"{TEMPLATES}{foreign.pk}/"), 404)
        error_of(client.patch(f"{TEMPLATES}{foreign.pk}/", {"name": "x"}), 404)
        error_of(client.delete(f"{TEMPLATES}{foreign.pk}/"), 404)
        error_of(client.get(f"{TEMPLATES}{foreign.pk}/configuration/"), 404)
        assert client.get(TEMPLATES).json()["count"] == 0

    def test_viewer_cannot_write(self, viewer, organization):
        template = TemplateFactory(organization=organization)
        error_of(viewer.patch(f"{TEMPLATES}{template.pk}/", {"name": "x"}), 403)
        error_of(viewer.delete(f"{TEMPLATES}{template.pk}/"), 403)

    def test_put_and_patch(self, client_as, organization):
        client, _ = client_as(Role.NETWORK_ADMIN)
        template = TemplateFactory(organization=organization, name="t1")
        body = client.put(f"{TEMPLATES}{template.pk}/", {"name": "t2", "config": LAN}).json()
        assert (body["name"], body["config"]) == ("t2", LAN)
        body = client.patch(f"{TEMPLATES}{template.pk}/", {"default_values": {"s": "v"}}).json()
        assert (body["name"], body["default_values"]) == ("t2", {"s": "v"})

    def test_change_refreshes_only_affected_configs(self, client_as, organization):
        client, _ = client_as(Role.NETWORK_ADMIN)
        template, other = (
            TemplateFactory(organization=organization, config=LAN),
            TemplateFactory(organization=organization),
        )
        group_template = TemplateFactory(organization=organization, config=LAN)
        affected, untouched = (
            make_device(organization, templates=[template]),
            make_device(organization, templates=[other]),
        )
        group = DeviceGroupFactory(organization=organization)
        group.templates.set([group_template])
        member = make_device(organization, templates=[group_template], group=group)
        mark_applied(affected, untouched, member)
        before = dict(Config.objects.values_list("device_id", "checksum"))
        changed = {"interfaces": [{"name": "lan", "type": "bridge", "bridge_members": ["eth0"], "mtu": 9000}]}
        assert client.patch(f"{TEMPLATES}{template.pk}/", {"config": changed}).status_code == 200
        assert client.patch(f"{TEMPLATES}{group_template.pk}/", {"config": changed}).status_code == 200
        after = {config.device_id: config for config in Config.objects.all()}
        for device in (affected, member):
            assert after[device.pk].status == "modified" and after[device.pk].checksum != before[device.pk]
        assert after[untouched.pk].status == "applied" and after[untouched.pk].checksum == before[untouched.pk]

    def test_rename_keeps_applied(self, client_as, organization):
        client, _ = client_as(Role.NETWORK_ADMIN)
        template = TemplateFactory(organization=organization, config=LAN)
        device = make_device(organization, templates=[template])
        mark_applied(device)
        client.patch(f"{TEMPLATES}{template.pk}/", {"name": "renamed"})
        assert Config.objects.get(device=device).status == "applied"

    def test_becoming_required_adds_it_to_existing_devices(self, client_as, organization, other_organization):
        client, _ = client_as(Role.NETWORK_ADMIN)
        own = TemplateFactory(organization=organization)
        device, foreign = make_device(organization, templates=[own]), make_device(other_organization)
        template = TemplateFactory(organization=organization, config=LAN)
        body = client.patch(f"{TEMPLATES}{template.pk}/", {"required": True}).json()
        assert body["required"] is True and body["default"] is True
        assert template_ids(device) == [str(template.pk), str(own.pk)]
        assert template_ids(foreign) == []
        assert "option mtu '1500'" in files_of(client.get(f"{DEVICES}{device.pk}/configuration/"))["etc/config/network"]

    def test_delete_refreshes_its_devices(self, client_as, organization):
        client, _ = client_as(Role.NETWORK_ADMIN)
        template = TemplateFactory(organization=organization, config=LAN)
        device = make_device(organization, templates=[template])
        mark_applied(device)
        assert client.delete(f"{TEMPLATES}{template.pk}/").status_code == 204
        assert template_ids(device) == [] and Config.objects.get(device=device).status == "modified"

    def test_configuration_download(self, viewer, organization):
        template = TemplateFactory(organization=organization, name="wifi", config=WIFI, default_values={"s": "dflt"})
        response = viewer.get(f"{TEMPLATES}{template.pk}/configuration/")
        assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
        assert response["Content-Disposition"] == 'attachment; filename="wifi.tar.gz"'
        assert "option ssid 'dflt'" in files_of(response)["etc/config/wireless"]


class TestGroups:
    def test_list_and_representation(self, viewer, organization):
        template = TemplateFactory(organization=organization)
        group = DeviceGroupFactory(organization=organization, name="aps", meta_data={"floor": 2}, context={"s": "g"})
        group.templates.set([template])
        body = viewer.get(GROUPS).json()
        assert set(body) == {"count", "next", "previous", "results"}
        item = body["results"][0]
        assert {key: item[key] for key in ("id", "name", "organization", "meta_data", "context", "templates")} == {
            "id": str(group.pk),
            "name": "aps",
            "organization": str(organization.pk),
            "meta_data": {"floor": 2},
            "context": {"s": "g"},
            "templates": [str(template.pk)],
        }
        assert set(item) == {
            "id",
            "name",
            "organization",
            "description",
            "meta_data",
            "context",
            "templates",
            "created",
            "modified",
        }

    def test_create(self, operator, organization):
        template, shared = TemplateFactory(organization=organization), TemplateFactory(organization=None)
        payload = {
            "name": "g1",
            "organization": str(organization.pk),
            "description": "lobby",
            "meta_data": {"a": 1},
            "context": {"s": "x"},
            "templates": [str(template.pk), str(shared.pk)],
        }
        response = operator.post(GROUPS, payload)
        assert response.status_code == 201, response.content
        group = DeviceGroup.objects.get(pk=response.json()["id"])
        assert set(group.templates.all()) == {template, shared} and group.context == {"s": "x"}

    def test_create_refusals(self, operator, admin_client, organization, other_organization):
        foreign = TemplateFactory(organization=other_organization)
        base = {"name": "g2", "organization": str(organization.pk)}
        error = error_of(operator.post(GROUPS, {**base, "templates": [str(foreign.pk)]}), 422)
        assert "body.templates" in fields_of(error)
        error = error_of(admin_client.post(GROUPS, {**base, "templates": [str(foreign.pk)]}), 422)
        assert "another organization" in fields_of(error)["body.templates"]
        assert "body.context" in fields_of(error_of(operator.post(GROUPS, {**base, "context": [1]}), 422))
        other = {"name": "g3", "organization": str(other_organization.pk)}
        assert "body.organization" in fields_of(error_of(operator.post(GROUPS, other), 422))
        DeviceGroupFactory(organization=organization, name="taken")
        error_of(operator.post(GROUPS, {**base, "name": "taken"}), 409)

    def test_viewer_cannot_write_and_other_tenants_are_404(self, viewer, organization, other_organization):
        own, foreign = (
            DeviceGroupFactory(organization=organization),
            DeviceGroupFactory(organization=other_organization),
        )
        assert viewer.get(f"{GROUPS}{own.pk}/").status_code == 200
        error_of(viewer.patch(f"{GROUPS}{own.pk}/", {"name": "x"}), 403)
        error_of(viewer.post(GROUPS, {"name": "x", "organization": str(organization.pk)}), 403)
        error_of(viewer.get(f"{GROUPS}{foreign.pk}/"), 404)
        assert [item["id"] for item in viewer.get(GROUPS).json()["results"]] == [str(own.pk)]

    def test_put_changes_templates_of_members(self, operator, organization):
        kept, leaving, joining = (TemplateFactory(organization=organization, config=LAN) for _ in range(3))
        own = TemplateFactory(organization=organization)
        group = DeviceGroupFactory(organization=organization, name="g")
        group.templates.set([kept, leaving])
        member = make_device(organization, templates=[own, kept, leaving], group=group)
        outsider = make_device(organization, templates=[leaving])
        payload = {"name": "g", "templates": [str(kept.pk), str(joining.pk)]}
        body = operator.put(f"{GROUPS}{group.pk}/", payload).json()
        assert set(body["templates"]) == {str(kept.pk), str(joining.pk)}
        assert template_ids(member) == [str(own.pk), str(kept.pk), str(joining.pk)]
        assert template_ids(outsider) == [str(leaving.pk)]

    def test_required_template_stays_when_leaving_a_group(self, operator, organization):
        required = TemplateFactory(organization=organization, required=True, default=True)
        group = DeviceGroupFactory(organization=organization)
        group.templates.set([required])
        member = make_device(organization, group=group)
        operator.patch(f"{GROUPS}{group.pk}/", {"templates": []})
        assert template_ids(member) == [str(required.pk)]

    def test_context_change_refreshes_members_only(self, operator, organization):
        template = TemplateFactory(organization=organization, config=WIFI, default_values={"s": "x"})
        group = DeviceGroupFactory(organization=organization, context={"s": "one"})
        member = make_device(organization, templates=[template], group=group)
        other = make_device(organization, templates=[template])
        mark_applied(member, other)
        assert operator.patch(f"{GROUPS}{group.pk}/", {"context": {"s": "two"}}).status_code == 200
        statuses = dict(Config.objects.values_list("device_id", "status"))
        assert statuses == {member.pk: "modified", other.pk: "applied"}
        wireless = files_of(operator.get(f"{DEVICES}{member.pk}/configuration/"))["etc/config/wireless"]
        assert "option ssid 'two'" in wireless

    def test_description_change_keeps_applied(self, operator, organization):
        group = DeviceGroupFactory(organization=organization)
        member = make_device(organization, group=group)
        mark_applied(member)
        operator.patch(f"{GROUPS}{group.pk}/", {"description": "not rendered"})
        assert Config.objects.get(device=member).status == "applied"

    def test_delete(self, operator, organization):
        group_template, own = TemplateFactory(organization=organization), TemplateFactory(organization=organization)
        group = DeviceGroupFactory(organization=organization)
        group.templates.set([group_template])
        member = make_device(organization, templates=[own, group_template], group=group)
        assert operator.delete(f"{GROUPS}{group.pk}/").status_code == 204
        member.refresh_from_db()
        assert member.group_id is None and template_ids(member) == [str(own.pk)]


class TestCertificateGroup:
    def test_unknown_common_name_is_404(self, viewer):
        error = error_of(viewer.get("/api/v1/controller/cert/vpn-client-1/group/?org=org-a,org-b"), 404)
        assert "vpn-client-1" in error["message"]

    def test_answers_through_a_registered_lookup(self, viewer, organization, other_organization, monkeypatch):
        group = DeviceGroupFactory(organization=organization, meta_data={"vlan": 10})
        foreign = DeviceGroupFactory(organization=other_organization)
        calls = []

        def lookup(*, common_name, groups, organization_slugs):
            calls.append(organization_slugs)
            found = {"client-1": group, "client-2": foreign}.get(common_name)
            return groups.filter(pk=found.pk).first() if found else None

        monkeypatch.setattr(services, "CERTIFICATE_GROUP_LOOKUPS", [lookup])
        body = viewer.get(f"/api/v1/controller/cert/client-1/group/?org={organization.slug},other").json()
        assert body["id"] == str(group.pk) and body["meta_data"] == {"vlan": 10}
        assert calls == [(organization.slug, "other")]
        error_of(viewer.get("/api/v1/controller/cert/client-2/group/"), 404)  # another tenant's group

    def test_needs_authentication(self, api_client):
        error_of(api_client.get("/api/v1/controller/cert/vpn-client-1/group/"), 401)


class TestOrganizationConfigSettings:
    def url(self, organization):
        return f"/api/v1/controller/organization/{organization.pk}/config-settings/"

    def test_viewer_reads_without_the_secret(self, viewer, organization):
        body = viewer.get(self.url(organization)).json()
        assert body == {
            "organization": str(organization.pk),
            "registration_enabled": True,
            "context": {},
            "device_limit": 0,
            "created": body["created"],
            "modified": body["modified"],
        }

    def test_organization_admin_sees_the_secret(self, client_as, organization):
        client, _ = client_as(Role.ORG_ADMIN)
        body = client.get(self.url(organization)).json()
        assert body["shared_secret"] == services.organization_settings(organization).shared_secret

    def test_hex_organization_id(self, viewer, organization):
        url = f"/api/v1/controller/organization/{organization.pk.hex}/config-settings/"
        assert viewer.get(url).json()["organization"] == str(organization.pk)

    def test_other_or_unknown_organization_is_404(self, client_as, other_organization):
        client, _ = client_as(Role.ORG_ADMIN)
        error_of(client.get(self.url(other_organization)), 404)
        error_of(client.patch(self.url(other_organization), {"registration_enabled": False}), 404)
        error_of(client.get("/api/v1/controller/organization/nope/config-settings/"), 404)
        error_of(client.get(f"/api/v1/controller/organization/{uuid.uuid4()}/config-settings/"), 404)

    def test_viewer_cannot_patch(self, viewer, organization):
        error = error_of(viewer.patch(self.url(organization), {"registration_enabled": False}), 403)
        assert "controller:write" in error["message"]

    def test_patch(self, client_as, organization):
        client, _ = client_as(Role.SITE_ADMIN)
        body = client.patch(self.url(organization), {"registration_enabled": False, "device_limit": 5}).json()
        assert body["registration_enabled"] is False
        assert body["device_limit"] == 0  # set by superusers only
        assert "shared_secret" not in body
        assert services.organization_settings(organization).registration_enabled is False

    def test_superuser_sets_device_limit(self, admin_client, organization):
        assert admin_client.patch(self.url(organization), {"device_limit": 5}).json()["device_limit"] == 5

    def test_context_change_refreshes_the_organizations_configs(self, client_as, organization, other_organization):
        client, _ = client_as(Role.SITE_ADMIN)
        template = TemplateFactory(organization=organization, config=WIFI)
        device = make_device(organization, templates=[template])
        other = make_device(other_organization)
        mark_applied(device, other)
        body = client.patch(self.url(organization), {"context": {"s": "org-wide"}}).json()
        assert body["context"] == {"s": "org-wide"}
        assert dict(Config.objects.values_list("device_id", "status")) == {device.pk: "modified", other.pk: "applied"}
        wireless = files_of(client.get(f"{DEVICES}{device.pk}/configuration/"))["etc/config/wireless"]
        assert "option ssid 'org-wide'" in wireless

    def test_invalid_context(self, client_as, organization):
        client, _ = client_as(Role.SITE_ADMIN)
        assert "body.context" in fields_of(error_of(client.patch(self.url(organization), {"context": "x"}), 422))

    def test_regenerate_secret(self, client_as, organization):
        before = services.organization_settings(organization).shared_secret
        site_admin, _ = client_as(Role.SITE_ADMIN)
        error = error_of(site_admin.patch(self.url(organization), {"regenerate_shared_secret": True}), 403)
        assert "user:admin" in error["message"]
        org_admin, _ = client_as(Role.ORG_ADMIN)
        body = org_admin.patch(self.url(organization), {"regenerate_shared_secret": True}).json()
        assert body["shared_secret"] != before
        assert services.organization_for_secret(body["shared_secret"]).organization_id == organization.pk
        assert services.organization_for_secret(before) is None


class TestPlatformDevices:
    def test_shape_and_fields(self, viewer, organization):
        site = SiteFactory(organization=organization)
        device = make_device(organization, name="sw-1", site=site, model="CRS326")
        body = viewer.get("/api/v1/devices/").json()
        assert set(body) == {"items", "total", "page", "per_page"}
        assert (body["total"], body["page"], body["per_page"]) == (1, 1, 50)
        item = body["items"][0]
        assert {key: item[key] for key in ("id", "name", "status", "site_id", "organization_id", "model")} == {
            "id": str(device.pk),
            "name": "sw-1",
            "status": "modified",
            "site_id": str(site.pk),
            "organization_id": str(organization.pk),
            "model": "CRS326",
        }
        assert item["mac_address"] == device.mac_address and item["last_ip"] is None

    def test_site_filter(self, viewer, organization):
        first, second = SiteFactory(organization=organization), SiteFactory(organization=organization)
        in_first = make_device(organization, site=first)
        make_device(organization, site=second)
        make_device(organization)
        body = viewer.get(f"/api/v1/devices/?site_id={first.pk}").json()
        assert [item["id"] for item in body["items"]] == [str(in_first.pk)] and body["total"] == 1
        assert viewer.get("/api/v1/devices/").json()["total"] == 3
        error = error_of(viewer.get("/api/v1/devices/?site_id=not-a-uuid"), 422)
        assert error["details"][0]["field"] == "query.site_id"

    def test_organization_and_search_filters(self, admin_client, organization, other_organization):
        mine = make_device(organization, name="core-router")
        make_device(other_organization, name="core-switch")
        body = admin_client.get(f"/api/v1/devices/?organization_id={organization.pk}").json()
        assert [item["id"] for item in body["items"]] == [str(mine.pk)]
        assert admin_client.get("/api/v1/devices/?search=core").json()["total"] == 2
        assert admin_client.get("/api/v1/devices/?search=router").json()["total"] == 1

    def test_tenancy_and_permission(self, client_as, api_client, organization, other_organization):
        make_device(OrganizationFactory())
        granted = SiteFactory(organization=organization)
        visible = make_device(organization, site=granted)
        make_device(organization, site=SiteFactory(organization=organization))
        client, _ = client_as(Role.VIEWER, sites=[granted])
        assert [item["id"] for item in client.get("/api/v1/devices/").json()["items"]] == [str(visible.pk)]
        error_of(api_client.get("/api/v1/devices/"), 401)

    def test_read_only(self, viewer, organization):
        payload = {"name": "x", "organization_id": str(organization.pk)}
        assert viewer.post("/api/v1/devices/", payload).status_code == 405

    def test_pagination(self, viewer, organization):
        for _ in range(3):
            make_device(organization)
        body = viewer.get("/api/v1/devices/?per_page=2&page=2").json()
        assert (body["total"], body["page"], body["per_page"], len(body["items"])) == (3, 2, 2, 1)


class TestAdmin:
    @pytest.mark.parametrize("model", ["device", "template", "devicegroup", "organizationconfigsettings"])
    def test_changelist_and_change_page(self, make_user, organization, model):
        device = make_device(organization, group=DeviceGroupFactory(organization=organization))
        TemplateFactory(organization=organization)
        services.organization_settings(organization)
        client = Client()
        client.force_login(make_user(role=None, superuser=True))
        response = client.get(f"/admin/controller/{model}/?q=a")
        assert response.status_code == 200
        objects = {"device": device, "template": Template.objects.first(), "devicegroup": device.group}
        objects["organizationconfigsettings"] = organization.config_settings
        page = client.get(f"/admin/controller/{model}/{objects[model].pk}/change/")
        assert page.status_code == 200 and device.key.encode() not in page.content
        assert client.get(f"/admin/controller/{model}/add/").status_code == 403
