"""Rendering: templates in order, variables by precedence, determinism, and status/checksum rules."""

import io
import tarfile

import pytest

from netfleet.accounts.factories import OrganizationFactory
from netfleet.controller import services
from netfleet.controller.choices import ConfigStatus
from netfleet.controller.factories import DeviceGroupFactory, TemplateFactory, make_device
from netfleet.controller.models import Config

pytestmark = pytest.mark.django_db

WIFI_TEMPLATE = {
    "interfaces": [
        {
            "name": "wlan0",
            "type": "wireless",
            "wireless": {"radio": "radio0", "mode": "access_point", "ssid": "{{ ssid }}"},
        }
    ]
}
LAN_TEMPLATE = {"interfaces": [{"name": "lan", "type": "bridge", "bridge_members": ["eth0"], "mtu": 1500}]}


def files_of(archive):
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {member.name: tar.extractfile(member).read().decode() for member in tar.getmembers() if member.isfile()}


def render(device):
    config = Config.objects.get(device=device)
    return services.render_config(services._configs_for_render([config.pk]).get())


def test_two_templates_and_variables_render_uci():
    org = OrganizationFactory()
    services.organization_settings(org)
    org.config_settings.context = {"ssid": "org-ssid", "timezone_name": "Europe/Rome"}
    org.config_settings.save()
    wifi = TemplateFactory(organization=org, config=WIFI_TEMPLATE, default_values={"ssid": "default-ssid"})
    lan = TemplateFactory(organization=org, config=LAN_TEMPLATE)
    group = DeviceGroupFactory(organization=org, context={"ssid": "group-ssid"})
    device = make_device(
        org,
        name="ap-1",
        group=group,
        config={"config": {"general": {"hostname": "{{ name }}"}}, "context": {}},
        templates=[wifi, lan],
    )
    archive, checksum = render(device)
    files = files_of(archive)
    assert "option hostname 'ap-1'" in files["etc/config/system"]
    wireless = files["etc/config/wireless"]
    assert "option ssid 'group-ssid'" in wireless  # group beats organization and template defaults
    assert "config interface 'lan'" in files["etc/config/network"]
    assert "option mtu '1500'" in files["etc/config/network"]
    # the device's own context wins over everything
    services.update_device(device=device, config={"context": {"ssid": "device-ssid"}})
    assert "option ssid 'device-ssid'" in files_of(render(device)[0])["etc/config/wireless"]
    assert len(checksum) == 32


def test_rendering_is_deterministic_and_follows_template_changes():
    org = OrganizationFactory()
    template = TemplateFactory(organization=org, config=LAN_TEMPLATE)
    device = make_device(org, templates=[template])
    first, second = render(device), render(device)
    assert first == second
    template.config = {"interfaces": [{"name": "lan", "type": "bridge", "bridge_members": ["eth0"], "mtu": 1400}]}
    template.save()
    services.refresh_affected(config_ids=services.configs_using_template(template))
    assert render(device)[1] != first[1]


def test_only_affected_devices_change():
    org = OrganizationFactory()
    shared, other = TemplateFactory(organization=org, config=LAN_TEMPLATE), TemplateFactory(organization=org)
    affected = make_device(org, templates=[shared])
    untouched = make_device(org, templates=[other])
    Config.objects.update(status=ConfigStatus.APPLIED)
    before = dict(Config.objects.values_list("device_id", "checksum"))
    shared.config = {"interfaces": [{"name": "lan", "type": "bridge", "bridge_members": ["eth0"], "mtu": 9000}]}
    shared.save()
    changed = services.refresh_affected(config_ids=services.configs_using_template(shared))
    assert changed == [affected.config.pk]
    after = {c.device_id: c for c in Config.objects.all()}
    assert after[affected.pk].status == ConfigStatus.MODIFIED and after[affected.pk].checksum != before[affected.pk]
    assert after[untouched.pk].status == ConfigStatus.APPLIED and after[untouched.pk].checksum == before[untouched.pk]


def test_a_change_that_renders_the_same_keeps_applied():
    org = OrganizationFactory()
    template = TemplateFactory(organization=org, config=LAN_TEMPLATE)
    device = make_device(org, templates=[template])
    Config.objects.update(status=ConfigStatus.APPLIED)
    template.name = "renamed"  # not part of the rendered output
    template.save()
    assert services.refresh_affected(config_ids=services.configs_using_template(template)) == []
    assert Config.objects.get(device=device).status == ConfigStatus.APPLIED


def test_required_and_default_templates():
    org = OrganizationFactory()
    required = TemplateFactory(organization=org, required=True, default=True)
    default = TemplateFactory(organization=org, default=True)
    TemplateFactory(organization=org)  # neither
    device = make_device(org)
    assert [t.pk for t in device.config.ordered_templates()] == sorted(
        [required.pk, default.pk], key=lambda pk: 0 if pk == required.pk else 1
    )
    with pytest.raises(Exception) as raised:
        services.set_templates(device.config, [default])
    assert "Required templates cannot be removed" in str(raised.value)
