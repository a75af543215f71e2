"""Small helpers for the few hot statements written out instead of built by the ORM (see docs/PERFORMANCE.md):
they stay portable between SQLite and PostgreSQL."""

import functools
import uuid

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


class JsonSql:
    """SQL expressions that have the database write a JSON answer itself, for the hot lists whose items are plain
    columns: building them in Python cost more than reading the rows (docs/PERFORMANCE.md). Values come out as
    DRF writes them (UUIDs dashed, datetimes ISO 8601 in UTC with `Z`, microseconds only when not zero). Keys and
    expressions are code, never user text. `JsonSql.of()` gives the default database's dialect."""

    def __init__(self, vendor):
        if vendor not in ("sqlite", "postgresql"):
            raise NotImplementedError(f"JSON answers from {vendor} SQL")
        self.sqlite = vendor == "sqlite"

    @classmethod
    def of(cls, alias=DEFAULT_DB_ALIAS):
        return _json_sql(connections[alias].vendor)

    def object(self, members):
        """A JSON object of {key: SQL expression}, keys in order."""
        pairs = ", ".join(f"'{_json_key(key)}', {expression}" for key, expression in members.items())
        return f"json_object({pairs})" if self.sqlite else f"json_build_object({pairs})"

    def object_or_null(self, column, members):
        """The object, or null where `column` is NULL (the row of a LEFT JOIN that found nothing)."""
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE {self.object(members)} END"

    def uuid(self, column):
        """A UUID column (NULL stays null): SQLite stores the 32 hex digits, PostgreSQL a uuid."""
        if not self.sqlite:
            return column
        parts = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
        return "(" + " || '-' || ".join(f"substr({column}, {start}, {length})" for start, length in parts) + ")"

    def timestamp(self, column):
        """A datetime column: SQLite stores `YYYY-MM-DD HH:MM:SS[.ffffff]` UTC text, as Python writes it."""
        if self.sqlite:
            return f"(replace(CAST({column} AS TEXT), ' ', 'T') || 'Z')"
        utc = f"({column} AT TIME ZONE 'UTC')"
        return (
            f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
            f"CASE WHEN to_char({utc}, 'US') = '000000' THEN '' ELSE to_char({utc}, '.US') END || 'Z')"
        )

    def boolean(self, column):
        return f"json(CASE WHEN {column} THEN 'true' ELSE 'false' END)" if self.sqlite else column

    def document(self, column):
        """A JSON column, embedded as JSON (SQLite stores its text)."""
        return f"json({column})" if self.sqlite else column

    def array(self, expression, source, order):
        """The JSON array of `expression` over the rows of `source` (`table alias WHERE ...`, may refer to the
        outer row) in `order`; [] when there are none."""
        # (an ORDER BY inside SQLite's aggregate needs 3.44; its query planner keeps an ordered subquery whole)
        if self.sqlite:
            subquery = f"SELECT {expression} AS item FROM {source} ORDER BY {order}"  # noqa: S608 - code, not input
            return f"(SELECT json_group_array(item) FROM ({subquery}))"  # noqa: S608 - code, not input
        aggregate = f"SELECT json_agg({expression} ORDER BY {order}) FROM {source}"  # noqa: S608 - code, not input
        return f"COALESCE(({aggregate}), '[]'::json)"

    def text(self, expression):
        """The JSON as text, which the driver returns as it is (psycopg would parse a json value)."""
        return expression if self.sqlite else f"({expression})::text"


@functools.cache
def _json_sql(vendor):
    return JsonSql(vendor)


def _json_key(key):
    if not key.replace("_", "").isalnum():
        raise ValueError(f"not a plain JSON key: {key!r}")
    return key


def json_array_of(texts):
    """The JSON texts (rows the database wrote with `JsonSql`) as one array, placed in an orjson answer unparsed."""
    return orjson.Fragment("[" + ",".join(texts) + "]")


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


def by_pk(model, pk, *, joined=None):
    """The instance of `model` with this primary key (or None) through a written-out statement: on per-request
    paths (authentication) the ORM's query compilation costs several times the lookup. `joined` names a
    non-null foreign key whose instance is read in the same statement (and cached on the result). Values go
    through the same converters the ORM applies."""
    quote = connection.ops.quote_name
    columns, converters = _loader(model, connection.vendor, "m")
    source = f"{table(model)} m"
    if joined is not None:
        related = model._meta.get_field(joined).related_model
        related_columns, related_converters = _loader(related, connection.vendor, "r")
        columns, converters = f"{columns}, {related_columns}", converters + related_converters
        key = quote(model._meta.get_field(joined).column)
        source += f" JOIN {table(related)} r ON r.{quote(related._meta.pk.column)} = m.{key}"
    sql = f"SELECT {columns} FROM {source} WHERE m.{quote(model._meta.pk.column)} = %s"  # noqa: S608 - no user text
    with connection.cursor() as cursor:
        cursor.execute(sql, [model._meta.pk.get_db_prep_value(pk, connection)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = _converted(row, converters)
    count = len(model._meta.concrete_fields)
    instance = model.from_db(connection.alias, None, values[:count])
    if joined is not None:
        setattr(instance, joined, related.from_db(connection.alias, None, values[count:]))
    return instance


def value_where(model, name, **where):
    """The value of field `name` of the row whose unique field (one keyword: `field=value`) has that value, or
    None when there is none: one column read by a written-out statement, through the ORM's converters (for a
    per-call lookup whose query compilation would cost more than the read)."""
    ((where_name, where_value),) = where.items()
    field, key = model._meta.get_field(name), model._meta.get_field(where_name)
    quote = connection.ops.quote_name
    sql = f"SELECT {quote(field.column)} FROM {table(model)} WHERE {quote(key.column)} = %s"  # noqa: S608 - no user text
    with connection.cursor() as cursor:
        cursor.execute(sql, [key.get_db_prep_value(where_value, connection)])
        row = cursor.fetchone()
    return None if row is None else _converted(row, [_field_converters(field)])[0]


def _converted(row, converters):
    """A raw row's values through the ORM's converters ([(column expression, its converters)], one per value)."""
    values = []
    for value, (expression, field_converters) in zip(row, converters, strict=True):
        for convert in field_converters:
            value = convert(value, expression, connection)
        values.append(value)
    return values


def _field_converters(field):
    expression = field.get_col(field.model._meta.db_table)
    return expression, connection.ops.get_db_converters(expression) + field.get_db_converters(connection)


_loaders = {}


def _loader(model, vendor, alias):
    """(column list, [(column expression, its converters)]) of a model's concrete fields, the table referred to
    as `alias`, built once."""
    key = (model, vendor, alias)
    if key not in _loaders:
        fields = model._meta.concrete_fields
        converters = [_field_converters(field) for field in fields]
        columns = ", ".join(f"{alias}.{connection.ops.quote_name(field.column)}" for field in fields)
        _loaders[key] = (columns, converters)
    return _loaders[key]
