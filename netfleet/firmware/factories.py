"""Deterministic factories for firmware models."""

import factory
from django.core.files.uploadedfile import SimpleUploadedFile

from netfleet.accounts.factories import OrganizationFactory

from . import services
from .models import Build, Category

ARCHER_C7_V5 = "ath79-generic-tplink_archer-c7-v5-squashfs-sysupgrade.bin"
ARCHER_C7_V5_MODEL = "TP-Link Archer C7 v5"


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"category-{n}")


class BuildFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Build

    category = factory.SubFactory(CategoryFactory)
    version = factory.Sequence(lambda n: f"23.05.{n}")
    os = factory.LazyAttribute(lambda build: f"OpenWrt {build.version} r1-test")


def image_content(build, size=64 * 1024):
    """Image bytes whose first line is the build's OS identifier (the tests' sysupgrade stand-in installs it as
    the device's version), padded with a deterministic pattern to `size` bytes."""
    head = f"{build.os or build.version}\n".encode()
    pattern = bytes(range(256))
    body = (pattern * (size // len(pattern) + 1))[: max(0, size - len(head))]
    return head + body


def make_image(build, type=ARCHER_C7_V5, content=None, name="openwrt-sysupgrade.bin"):  # noqa: A002
    content = image_content(build) if content is None else content
    return services.create_image(build=build, file=SimpleUploadedFile(name, content), type=type)
