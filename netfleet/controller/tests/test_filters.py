"""One test per filter of the device, template and group lists (and the platform device list), over HTTP."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.apps import apps

from netfleet.accounts.factories import SiteFactory
from netfleet.controller import services
from netfleet.controller.choices import ConfigStatus
from netfleet.controller.factories import DeviceGroupFactory, TemplateFactory, make_device
from netfleet.controller.models import Config

pytestmark = pytest.mark.django_db

DEVICES = "/api/v1/controller/device/"
TEMPLATES = "/api/v1/controller/template/"
GROUPS = "/api/v1/controller/group/"
PLATFORM_DEVICES = "/api/v1/devices/"

JAN, FEB, MAR = (datetime(2025, month, 1, 12, 0, tzinfo=UTC) for month in (1, 2, 3))


def ids(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    body = response.json()
    return {item["id"] for item in body.get("results", body.get("items"))}


def rejected(client, url, **params):
    """The query parameters that a 422 names."""
    response = client.get(url, params)
    assert response.status_code == 422, response.content
    return {item["field"] for item in response.json()["error"]["details"]}


@pytest.fixture
def client(admin_client):
    return admin_client


def created_at(moment, factory, *args, **kwargs):
    with time_machine.travel(moment, tick=False):
        return factory(*args, **kwargs)


class TestDeviceFilters:
    def test_config__status(self, client, organization):
        applied, modified = make_device(organization), make_device(organization)
        Config.objects.filter(device=applied).update(status=ConfigStatus.APPLIED)
        assert ids(client, DEVICES, config__status="applied") == {str(applied.pk)}
        assert ids(client, DEVICES, config__status="modified") == {str(modified.pk)}
        assert ids(client, DEVICES, config__status="error") == set()
        assert rejected(client, DEVICES, config__status="broken") == {"query.config__status"}

    def test_status(self, client, organization):
        applied, _ = make_device(organization), make_device(organization)
        Config.objects.filter(device=applied).update(status=ConfigStatus.APPLIED)
        assert ids(client, PLATFORM_DEVICES, status="applied") == {str(applied.pk)}
        assert rejected(client, PLATFORM_DEVICES, status="broken") == {"query.status"}

    def test_config__backend(self, client, organization):
        openwrt = make_device(organization)
        openwisp = make_device(organization, config={"backend": "netjsonconfig.OpenWisp"})
        assert ids(client, DEVICES, config__backend="netjsonconfig.OpenWrt") == {str(openwrt.pk)}
        assert ids(client, DEVICES, config__backend="netjsonconfig.OpenWisp") == {str(openwisp.pk)}
        assert rejected(client, DEVICES, config__backend="cisco") == {"query.config__backend"}

    def test_organization(self, client, organization, other_organization):
        mine, _ = make_device(organization), make_device(other_organization)
        assert ids(client, DEVICES, organization=organization.pk) == {str(mine.pk)}
        assert rejected(client, DEVICES, organization="acme") == {"query.organization"}

    def test_organization_id(self, client, organization, other_organization):
        mine, _ = make_device(organization), make_device(other_organization)
        assert ids(client, PLATFORM_DEVICES, organization_id=organization.pk) == {str(mine.pk)}
        assert rejected(client, PLATFORM_DEVICES, organization_id="acme") == {"query.organization_id"}

    def test_organization_slug(self, client, organization, other_organization):
        mine, _ = make_device(organization), make_device(other_organization)
        assert ids(client, DEVICES, organization_slug=organization.slug) == {str(mine.pk)}
        assert ids(client, DEVICES, organization_slug="no-such-org") == set()

    def test_config__templates(self, client, organization):
        template, other = TemplateFactory(organization=organization), TemplateFactory(organization=organization)
        with_template = make_device(organization, templates=[template, other])
        make_device(organization, templates=[other])
        assert ids(client, DEVICES, config__templates=template.pk) == {str(with_template.pk)}
        assert len(ids(client, DEVICES, config__templates=other.pk)) == 2
        assert rejected(client, DEVICES, config__templates="x") == {"query.config__templates"}

    def test_group(self, client, organization):
        group = DeviceGroupFactory(organization=organization)
        member, _ = make_device(organization, group=group), make_device(organization)
        assert ids(client, DEVICES, group=group.pk) == {str(member.pk)}
        assert rejected(client, DEVICES, group="lobby") == {"query.group"}

    def test_site_id(self, client, organization):
        site = SiteFactory(organization=organization)
        at_site, _ = make_device(organization, site=site), make_device(organization)
        assert ids(client, DEVICES, site_id=site.pk) == {str(at_site.pk)}
        assert ids(client, PLATFORM_DEVICES, site_id=site.pk) == {str(at_site.pk)}
        assert rejected(client, PLATFORM_DEVICES, site_id="hq") == {"query.site_id"}

    def test_with_geo(self, client, organization):
        located, unlocated = make_device(organization), make_device(organization)
        if apps.is_installed("netfleet.geo"):  # locations belong to the geo app; without it no device has one
            location = apps.get_model("geo", "Location").objects.create(
                organization=organization, name="HQ", geometry={"type": "Point", "coordinates": [12.49, 41.89]}
            )
            apps.get_model("geo", "DeviceLocation").objects.create(device=located, location=location)
            with_location = {str(located.pk)}
        else:
            with_location = set()
        everything = {str(located.pk), str(unlocated.pk)}
        assert ids(client, DEVICES, with_geo="true") == with_location
        assert ids(client, DEVICES, with_geo="false") == everything - with_location
        assert ids(client, DEVICES) == everything

    def test_name(self, client, organization):
        device, _ = make_device(organization, name="Core-1"), make_device(organization, name="core-2")
        assert ids(client, DEVICES, name="core-1") == {str(device.pk)}

    def test_mac_address(self, client, organization):
        device, _ = make_device(organization, mac_address="00:11:22:33:44:55"), make_device(organization)
        assert ids(client, DEVICES, mac_address="00:11:22:33:44:55") == {str(device.pk)}

    def test_model(self, client, organization):
        device, _ = make_device(organization, model="RB4011"), make_device(organization, model="hAP")
        assert ids(client, DEVICES, model="rb4011") == {str(device.pk)}

    def test_is_deactivated(self, client, organization):
        deactivated, active = make_device(organization), make_device(organization)
        services.deactivate_device(device=deactivated)
        assert ids(client, DEVICES, is_deactivated="true") == {str(deactivated.pk)}
        assert ids(client, DEVICES, is_deactivated="false") == {str(active.pk)}

    def test_created(self, client, organization):
        january = created_at(JAN, make_device, organization)
        created_at(FEB, make_device, organization)
        assert ids(client, DEVICES, created=JAN.isoformat()) == {str(january.pk)}
        assert ids(client, DEVICES, created=MAR.isoformat()) == set()
        assert rejected(client, DEVICES, created="last tuesday") == {"query.created"}

    def test_created__gte(self, client, organization):
        created_at(JAN, make_device, organization)
        february, march = created_at(FEB, make_device, organization), created_at(MAR, make_device, organization)
        assert ids(client, DEVICES, created__gte=FEB.isoformat()) == {str(february.pk), str(march.pk)}
        assert rejected(client, DEVICES, created__gte="soon") == {"query.created__gte"}

    def test_created__lt(self, client, organization):
        january = created_at(JAN, make_device, organization)
        created_at(FEB, make_device, organization)
        assert ids(client, DEVICES, created__lt=FEB.isoformat()) == {str(january.pk)}
        assert rejected(client, DEVICES, created__lt="soon") == {"query.created__lt"}

    def test_search(self, client, organization):
        by_name = make_device(organization, name="lobby-ap", mac_address="00:00:00:00:00:01")
        by_mac = make_device(organization, name="roof", mac_address="0A:BC:00:00:00:02")
        assert ids(client, DEVICES, search="lobby") == {str(by_name.pk)}
        assert ids(client, DEVICES, search="0a:bc") == {str(by_mac.pk)}
        assert ids(client, DEVICES, q="LOBBY") == {str(by_name.pk)}
        assert ids(client, PLATFORM_DEVICES, search="roof") == {str(by_mac.pk)}


class TestTemplateFilters:
    def test_organization(self, client, organization, other_organization):
        mine, _ = TemplateFactory(organization=organization), TemplateFactory(organization=other_organization)
        TemplateFactory(organization=None)
        assert ids(client, TEMPLATES, organization=organization.pk) == {str(mine.pk)}
        assert rejected(client, TEMPLATES, organization="acme") == {"query.organization"}

    def test_organization_slug(self, client, organization, other_organization):
        mine, _ = TemplateFactory(organization=organization), TemplateFactory(organization=other_organization)
        assert ids(client, TEMPLATES, organization_slug=organization.slug) == {str(mine.pk)}
        assert ids(client, TEMPLATES, organization_slug="no-such-org") == set()

    def test_backend(self, client, organization):
        openwrt = TemplateFactory(organization=organization)
        openwisp = TemplateFactory(organization=organization, backend="netjsonconfig.OpenWisp", config={})
        assert ids(client, TEMPLATES, backend="netjsonconfig.OpenWrt") == {str(openwrt.pk)}
        assert ids(client, TEMPLATES, backend="netjsonconfig.OpenWisp") == {str(openwisp.pk)}
        assert rejected(client, TEMPLATES, backend="cisco") == {"query.backend"}

    def test_type(self, client, organization):
        generic, vpn = (
            TemplateFactory(organization=organization),
            TemplateFactory(organization=organization, type="vpn"),
        )
        assert ids(client, TEMPLATES, type="vpn") == {str(vpn.pk)}
        assert ids(client, TEMPLATES, type="generic") == {str(generic.pk)}
        assert rejected(client, TEMPLATES, type="other") == {"query.type"}

    def test_default(self, client, organization):
        default, plain = (
            TemplateFactory(organization=organization, default=True),
            TemplateFactory(organization=organization),
        )
        assert ids(client, TEMPLATES, default="true") == {str(default.pk)}
        assert ids(client, TEMPLATES, default="false") == {str(plain.pk)}

    def test_required(self, client, organization):
        required = TemplateFactory(organization=organization, required=True, default=True)
        plain = TemplateFactory(organization=organization)
        assert ids(client, TEMPLATES, required="true") == {str(required.pk)}
        assert ids(client, TEMPLATES, required="false") == {str(plain.pk)}

    def test_created(self, client, organization):
        january = created_at(JAN, TemplateFactory, organization=organization)
        created_at(FEB, TemplateFactory, organization=organization)
        assert ids(client, TEMPLATES, created=JAN.isoformat()) == {str(january.pk)}
        assert rejected(client, TEMPLATES, created="yesterday") == {"query.created"}

    def test_created__gte(self, client, organization):
        created_at(JAN, TemplateFactory, organization=organization)
        february = created_at(FEB, TemplateFactory, organization=organization)
        assert ids(client, TEMPLATES, created__gte=FEB.isoformat()) == {str(february.pk)}

    def test_created__lt(self, client, organization):
        january = created_at(JAN, TemplateFactory, organization=organization)
        created_at(FEB, TemplateFactory, organization=organization)
        assert ids(client, TEMPLATES, created__lt=FEB.isoformat()) == {str(january.pk)}

    def test_search(self, client, organization):
        wifi, _ = (
            TemplateFactory(organization=organization, name="Guest WiFi"),
            TemplateFactory(organization=organization),
        )
        assert ids(client, TEMPLATES, search="wifi") == {str(wifi.pk)}


class TestGroupFilters:
    def test_organization(self, client, organization, other_organization):
        mine, _ = DeviceGroupFactory(organization=organization), DeviceGroupFactory(organization=other_organization)
        assert ids(client, GROUPS, organization=organization.pk) == {str(mine.pk)}
        assert rejected(client, GROUPS, organization="acme") == {"query.organization"}

    def test_organization_slug(self, client, organization, other_organization):
        mine, _ = DeviceGroupFactory(organization=organization), DeviceGroupFactory(organization=other_organization)
        assert ids(client, GROUPS, organization_slug=organization.slug) == {str(mine.pk)}
        assert ids(client, GROUPS, organization_slug="no-such-org") == set()

    def test_empty(self, client, organization):
        empty, used = DeviceGroupFactory(organization=organization), DeviceGroupFactory(organization=organization)
        make_device(organization, group=used)
        make_device(organization, group=used)
        assert ids(client, GROUPS, empty="true") == {str(empty.pk)}
        assert ids(client, GROUPS, empty="false") == {str(used.pk)}
        assert ids(client, GROUPS) == {str(empty.pk), str(used.pk)}

    def test_search(self, client, organization):
        lobby = DeviceGroupFactory(organization=organization, name="Lobby APs")
        DeviceGroupFactory(organization=organization, name="Roof")
        assert ids(client, GROUPS, search="lobby") == {str(lobby.pk)}
