"""Small helpers for the few hot statements written out instead of built by the ORM (see docs/PERFORMANCE.md):
they stay portable between SQLite and PostgreSQL."""

import uuid

from django.db import connection


def table(model):
    """The model's quoted table name."""
    return connection.ops.quote_name(model._meta.db_table)


def placeholders(values):
    """`%s,%s,...`: one parameter per value, for an IN list."""
    return ",".join(["%s"] * len(values))


def as_uuid(value):
    """A UUID column's value as read by a raw cursor: PostgreSQL's driver gives UUIDs, SQLite's hex text."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)
