"""Small helpers for the few hot statements written out instead of built by the ORM (see docs/PERFORMANCE.md):
they stay portable between SQLite and PostgreSQL."""

import functools
import uuid
from datetime import UTC

import orjson
from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init


def table(model):
    """The model's quoted table name."""
    return connection.ops.quote_name(model._meta.db_table)


def placeholders(values):
    """`%s,%s,...`: one parameter per value, for an IN list."""
    return ",".join(["%s"] * len(values))


def as_uuid(value):
    """A UUID column's value as read by a raw cursor: PostgreSQL's driver gives UUIDs, SQLite's hex text."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def uuid_param(value):
    """A UUID (or its text) as a statement parameter for a UUID column, as the ORM would pass it: hex text on SQLite,
    the UUID itself on PostgreSQL (without the field's preparation chain: hot statements take hundreds)."""
    if not isinstance(value, uuid.UUID):
        value = uuid.UUID(value)
    return value.hex if _sqlite() else value


@functools.cache
def _sqlite():
    """Whether the default database is SQLite (looked up once: each `connection.vendor` is a thread-local lookup)."""
    return connections[DEFAULT_DB_ALIAS].vendor == "sqlite"


def uuid_text(value):
    """A UUID column's value (raw cursor) as the API writes it, without building a UUID for SQLite's hex text."""
    if isinstance(value, str) and len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value)


def timestamp_column(column):
    """A datetime column to select for `timestamp_text`: on SQLite its stored text as it is (parsing it into a
    datetime only to format it again cost more than the rest of the row)."""
    return f"CAST({column} AS TEXT)" if connection.vendor == "sqlite" else column


def timestamp_text(value):
    """A datetime column's value (raw cursor) as DRF's DateTimeField writes it with TIME_ZONE UTC. SQLite's driver
    gives naive UTC datetimes (or, through `timestamp_column`, the stored `YYYY-MM-DD HH:MM:SS[.ffffff]` UTC text),
    PostgreSQL's aware ones."""
    if isinstance(value, str):
        return f"{value[:10]}T{value[11:]}Z"
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def json_fragment(value):
    """A JSON column's value (raw cursor: the stored text) placed in an orjson answer as it is, unparsed."""
    return orjson.Fragment(value) if isinstance(value, str | bytes) else value


def json_param(value):
    """A JSON column's parameter for a written-out statement, dumped by orjson: for a NetJSON document the ORM's
    json.dumps costs several times as much. Only for JSON-native values (what a JSON body parses into)."""
    if connection.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        return Jsonb(value, dumps=_orjson_text)
    return _orjson_text(value)


def _orjson_text(value):
    return orjson.dumps(value).decode()


def raw_rows(queryset):
    """The rows of a `values_list` queryset as the driver returns them, without the ORM's per-value converters
    (on a page of 100 rows they cost three times the query). Convert with the helpers above."""
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:  # a condition the ORM knows matches nothing (e.g. `__in` an empty list)
        return []
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def loaded(model, columns, values):
    """An instance of `model` from a row of these columns (attribute names), the same as `model.from_db` makes it
    (the columns not given are deferred), without running `Model.__init__`: its per-field loop costs more than
    reading the row on hot paths. While any pre_init/post_init receiver is connected, `from_db` (which sends those
    signals) makes it instead."""
    if pre_init.receivers or post_init.receivers:
        return model.from_db(connection.alias, columns, values)
    instance = model.__new__(model)
    instance.__dict__.update(zip(columns, values, strict=True))
    instance._state = ModelState()
    instance._state.adding, instance._state.db = False, DEFAULT_DB_ALIAS  # the rows hot paths read: `connection`
    return instance


def by_pk(model, pk):
    """The instance of `model` with this primary key (or None) through a written-out statement: on per-request
    paths (authentication) the ORM's query compilation costs several times the lookup. Values go through the
    same converters the ORM applies."""
    columns, converters = _loader(model, connection.vendor)
    sql = f"SELECT {columns} FROM {table(model)} WHERE {connection.ops.quote_name(model._meta.pk.column)} = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [model._meta.pk.get_db_prep_value(pk, connection)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for value, (expression, field_converters) in zip(row, converters, strict=True):
        for convert in field_converters:
            value = convert(value, expression, connection)
        values.append(value)
    return model.from_db(connection.alias, None, values)


_loaders = {}


def _loader(model, vendor):
    """(quoted column list, [(column expression, its converters)]) of a model's concrete fields, built once."""
    key = (model, vendor)
    if key not in _loaders:
        fields = model._meta.concrete_fields
        converters = []
        for field in fields:
            expression = field.get_col(model._meta.db_table)
            converters.append(
                (expression, connection.ops.get_db_converters(expression) + field.get_db_converters(connection))
            )
        _loaders[key] = (", ".join(connection.ops.quote_name(field.column) for field in fields), converters)
    return _loaders[key]
