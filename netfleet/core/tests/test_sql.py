"""The raw-row helpers answer what the ORM and DRF would, for the values of both drivers: SQLite's (hex text
UUIDs, naive UTC datetimes) and PostgreSQL's (UUID objects, aware datetimes)."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from netfleet.accounts.models import Organization
from netfleet.core.api.renderers import JSONRenderer
from netfleet.core.sql import by_pk, json_fragment, raw_rows, timestamp_text, uuid_param, uuid_text

PK = uuid.UUID("53c958e1-86c9-4574-87d1-46d64f6f148d")


def test_uuid_text_of_either_driver():
    assert uuid_text(PK.hex) == uuid_text(PK) == str(PK)


def test_uuid_param_is_what_the_orm_passes():
    from django.db import connection

    from netfleet.controller.models import Device

    prepared = Device._meta.pk.get_db_prep_value(PK, connection)
    assert uuid_param(PK) == uuid_param(PK.hex) == uuid_param(str(PK)) == prepared


@pytest.mark.parametrize("microsecond", [0, 152783])
def test_timestamp_text_matches_drf(microsecond):
    from rest_framework.fields import DateTimeField

    aware = datetime(2026, 11, 22, 6, 29, 21, microsecond, tzinfo=UTC)
    expected = DateTimeField().to_representation(aware)
    assert timestamp_text(aware.replace(tzinfo=None)) == expected  # SQLite
    assert timestamp_text(str(aware.replace(tzinfo=None))) == expected  # SQLite, the stored text
    assert timestamp_text(aware) == expected  # PostgreSQL
    assert timestamp_text(aware.astimezone(timezone(timedelta(hours=2)))) == expected


def test_json_fragment_passes_stored_text_through():
    body = {"items": [json_fragment('{"general": {"hostname": "ap"}}'), json_fragment({"already": "parsed"})]}
    expected = {"items": [{"general": {"hostname": "ap"}}, {"already": "parsed"}]}
    assert orjson.loads(JSONRenderer().render(body)) == expected


@pytest.mark.django_db
def test_raw_rows_and_by_pk():
    organization = Organization.objects.create(name="Raw", slug="raw")
    rows = raw_rows(Organization.objects.filter(slug="raw").values_list("pk", "slug"))
    assert [(uuid_text(pk), slug) for pk, slug in rows] == [(str(organization.pk), "raw")]
    assert raw_rows(Organization.objects.filter(pk__in=[]).values_list("pk")) == []  # no statement at all
    assert by_pk(Organization, organization.pk).slug == "raw"
    assert by_pk(Organization, uuid.uuid4()) is None
