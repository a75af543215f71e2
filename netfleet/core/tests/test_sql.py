"""The raw-row helpers answer what the ORM and DRF would, for the values of both drivers: SQLite's (hex text
UUIDs, naive UTC datetimes) and PostgreSQL's (UUID objects, aware datetimes)."""

import json
import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime

import orjson
import pytest
from django.db import connection
from psycopg.types.json import Jsonb
from rest_framework.fields import DateTimeField

from netfleet.accounts.models import Organization, Site
from netfleet.core.api.renderers import JSONRenderer
from netfleet.core.sql import JsonSql, as_uuid, by_pk, json_array_of, raw_rows, uuid_param, value_where

PK = uuid.UUID("53c958e1-86c9-4574-87d1-46d64f6f148d")


def test_uuid_param_is_what_the_orm_passes():
    from django.db import connection

    from netfleet.controller.models import Device

    prepared = Device._meta.pk.get_db_prep_value(PK, connection)
    assert uuid_param(PK) == uuid_param(PK.hex) == uuid_param(str(PK)) == prepared


PARENT, FIRST, SECOND = (uuid.UUID(int=n) for n in (0xA, 0xB, 0xC))
ROWS = [  # id, parent, created, flag, doc, [(child, order)]
    (PK, None, datetime(2026, 11, 22, 6, 29, 21, 152783, tzinfo=UTC), True, {"a": [1, "x"], "b": None}, []),
    (PARENT, PK, datetime(2026, 11, 22, 6, 29, 21, tzinfo=UTC), False, {}, [(SECOND, 1), (FIRST, 0)]),
]
SCHEMA = {
    "sqlite": (  # as Django creates and fills these columns on SQLite
        "CREATE TEMP TABLE {d} (id char(32), parent char(32), created datetime, flag bool, doc text)",
        'CREATE TEMP TABLE {t} (d_id char(32), child char(32), "order" integer)',
        lambda pk: pk and pk.hex,
        lambda moment: str(moment.replace(tzinfo=None)),
        lambda flag: int(flag),
        json.dumps,
    ),
    "postgresql": (
        "CREATE TEMP TABLE {d} (id uuid, parent uuid, created timestamptz, flag boolean, doc jsonb)",
        'CREATE TEMP TABLE {t} (d_id uuid, child uuid, "order" integer)',
        lambda pk: pk,
        lambda moment: moment,
        lambda flag: flag,
        lambda doc: Jsonb(doc),
    ),
}


def written_items(cursor, vendor):
    """The ROWS' items as the database writes them through JsonSql, parsed."""
    create_d, create_t, to_uuid, to_time, to_flag, to_doc = SCHEMA[vendor]
    cursor.execute(create_d.format(d="listed"))
    cursor.execute(create_t.format(t="child"))
    mark = "?" if vendor == "sqlite" else "%s"
    for pk, parent, created, flag, doc, children in ROWS:
        values = (to_uuid(pk), to_uuid(parent), to_time(created), to_flag(flag), to_doc(doc))
        cursor.execute(f"INSERT INTO listed VALUES ({', '.join([mark] * 5)})", values)  # noqa: S608
        for child, order in children:
            linked = (to_uuid(pk), to_uuid(child), order)
            cursor.execute(f"INSERT INTO child VALUES ({mark}, {mark}, {mark})", linked)  # noqa: S608
    sql = JsonSql(vendor)
    item = sql.object(
        {
            "id": sql.uuid("d.id"),
            "parent": sql.uuid("d.parent"),
            "created": sql.timestamp("d.created"),
            "flag": sql.boolean("d.flag"),
            "doc": sql.document("d.doc"),
            "children": sql.array(sql.uuid("c.child"), "child c WHERE c.d_id = d.id", 'c."order"'),
            "link": sql.object_or_null("d.parent", {"to": sql.uuid("d.parent")}),
        }
    )
    cursor.execute(f"SELECT {sql.text(item)} FROM listed d ORDER BY d.created DESC")  # noqa: S608 - test SQL
    texts = [row[0] for row in cursor.fetchall()]
    assert all(isinstance(text, str) for text in texts)  # text for json_array_of, not parsed by the driver
    return orjson.loads(JSONRenderer().render({"items": json_array_of(texts)}))["items"]


def expected_items():
    """What DRF's fields write for the ROWS."""
    items = []
    for pk, parent, created, flag, doc, children in ROWS:
        items.append(
            {
                "id": str(pk),
                "parent": parent and str(parent),
                "created": DateTimeField().to_representation(created),
                "flag": flag,
                "doc": doc,
                "children": [str(child) for child, _ in sorted(children, key=lambda child: child[1])],
                "link": parent and {"to": str(parent)},
            }
        )
    return items


def test_json_written_by_sqlite_is_what_drf_writes():
    with closing(sqlite3.connect(":memory:")) as database:
        items = written_items(database.cursor(), "sqlite")
    assert items == expected_items()
    assert items[1]["created"] == "2026-11-22T06:29:21Z"  # no microseconds, as isoformat() leaves them out


@pytest.mark.django_db
def test_json_written_by_the_test_database_is_what_drf_writes():
    with connection.cursor() as cursor:
        items = written_items(cursor, connection.vendor)
    assert items == expected_items()


def test_json_keys_are_plain():
    with pytest.raises(ValueError, match="not a plain JSON key"):
        JsonSql("sqlite").object({"a', (SELECT 1), 'b": "1"})


@pytest.mark.django_db
def test_raw_rows_and_by_pk():
    organization = Organization.objects.create(name="Raw", slug="raw")
    rows = raw_rows(Organization.objects.filter(slug="raw").values_list("pk", "slug"))
    assert [(as_uuid(pk), slug) for pk, slug in rows] == [(organization.pk, "raw")]
    assert raw_rows(Organization.objects.filter(pk__in=[]).values_list("pk")) == []  # no statement at all
    assert by_pk(Organization, organization.pk).slug == "raw"
    assert by_pk(Organization, uuid.uuid4()) is None


@pytest.mark.django_db
def test_by_pk_reads_a_joined_instance_in_the_same_statement(django_assert_num_queries):
    organization = Organization.objects.create(name="Joined", slug="joined")
    site = Site.objects.create(organization=organization, name="Roof", slug="roof")
    with django_assert_num_queries(1):
        read = by_pk(Site, site.pk, joined="organization")
        assert (read.name, read.slug, read.organization.slug) == ("Roof", "roof", "joined")
    assert read.organization == organization and read.organization.created == organization.created
    assert by_pk(Site, uuid.uuid4(), joined="organization") is None


@pytest.mark.django_db
def test_value_where_reads_one_converted_column():
    from netfleet.controller.models import OrganizationConfigSettings

    organization = Organization.objects.create(name="Valued", slug="valued")
    OrganizationConfigSettings.objects.create(
        organization=organization, shared_secret="s", shared_secret_digest="d", context={"ssid": "lobby", "n": 2}
    )
    read = value_where(OrganizationConfigSettings, "context", organization=organization.pk)
    assert read == {"ssid": "lobby", "n": 2}
    assert value_where(OrganizationConfigSettings, "registration_enabled", organization=organization.pk) is True
    assert value_where(OrganizationConfigSettings, "context", organization=uuid.uuid4()) is None
