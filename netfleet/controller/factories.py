"""Deterministic factories for controller models."""

import factory

from netfleet.accounts.factories import OrganizationFactory

from . import services
from .models import DeviceGroup, Template


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Template

    organization = factory.SubFactory(OrganizationFactory)
    # zero-padded: name order (how default templates are chosen and lists are sorted) is creation order
    name = factory.Sequence(lambda n: f"template-{n:06d}")
    backend = "netjsonconfig.OpenWrt"
    config = factory.LazyFunction(lambda: {"interfaces": [{"name": "eth0", "type": "ethernet"}]})


class DeviceGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeviceGroup

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"group-{n}")


_mac_counter = iter(range(1, 2**40))


def next_mac():
    value = next(_mac_counter)
    return ":".join(f"{(value >> shift) & 0xFF:02X}" for shift in (40, 32, 24, 16, 8, 0))


def make_device(organization=None, *, name=None, mac_address=None, config=None, templates=None, **fields):
    """A device created through the service, as the API and the agent create them."""
    organization = organization or OrganizationFactory()
    mac = mac_address or next_mac()
    return services.create_device(
        organization=organization,
        name=name or f"dev-{mac.replace(':', '').lower()}",
        mac_address=mac,
        config=config,
        templates=templates,
        **fields,
    )
