"""The time series store behind a small backend interface, with the SQL implementation on the main database.

A point is (device_id, metric, tag, field, time, value); `time` is an integer of microseconds since the epoch, so a
bucket is `time / bucket` (integer division) on SQLite and PostgreSQL alike. Writes are multi-row
`INSERT ... ON CONFLICT DO NOTHING` statements (no ORM object per point): a resent document's points collide with
the unique key (device, metric, time, tag, field) and are dropped. That key is also the index of a device's chart
query. Points older than the raw retention are downsampled into hourly rollups (count, sum, min, max), and rollups
older than their own retention are deleted. `get_backend()` returns the configured backend
(NETFLEET_MONITORING_TIMESERIES_BACKEND), so a dedicated TSDB can implement the same interface.
"""

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from netfleet.core.sql import as_uuid, placeholders

from .models import Point, Rollup

MICROSECONDS = 1_000_000
HOUR = 3600 * MICROSECONDS
WRITE_BATCH = 1000  # rows per INSERT: 6 parameters each, well under SQLite's variable limit


def to_us(moment: datetime) -> int:
    """A timezone-aware datetime as integer microseconds since the epoch."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * MICROSECONDS + delta.microseconds


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value // MICROSECONDS, tz=UTC).replace(microsecond=value % MICROSECONDS)


class Bucket(NamedTuple):
    """Aggregates of one series in one bucket (a tuple: a week's chart builds thousands)."""

    metric: str
    tag: str
    field: str
    time: int  # bucket start, µs
    count: int
    sum: float
    min: float
    max: float


class TimeSeriesBackend:
    """What the monitoring app needs from a time series database."""

    def write(self, points) -> int:
        """Store (device_id, metric, tag, field, time_us, value) tuples in batches; returns how many were new."""
        raise NotImplementedError

    def aggregate(self, *, device_ids, metrics, start, end, bucket, by_device=False) -> list:
        """Buckets of `bucket` µs over [start, end) for these devices (ids or a queryset of devices) and metrics.
        With `by_device`, one list per device: {device_id: [Bucket]}."""
        raise NotImplementedError

    def latest(self, *, device_id, metric, tag, fields, before) -> dict:
        """{field: value} of the newest point of a series strictly before `before` (µs)."""
        raise NotImplementedError

    def downsample(self, *, before) -> int:
        """Move raw points older than `before` (µs, rounded down to the hour) into hourly rollups."""
        raise NotImplementedError

    def expire(self, *, before) -> int:
        """Delete rollups older than `before` (µs)."""
        raise NotImplementedError


class SQLBackend(TimeSeriesBackend):
    def write(self, points) -> int:
        points = list(points)
        if not points:
            return 0
        prep = Point._meta.get_field("device").target_field.get_db_prep_value
        table = connection.ops.quote_name(Point._meta.db_table)
        written = 0
        with connection.cursor() as cursor:
            for offset in range(0, len(points), WRITE_BATCH):
                chunk = points[offset : offset + WRITE_BATCH]
                params = []
                prepared = {}  # a batch holds few devices: convert each id once
                for device_id, metric, tag, field, time, value in chunk:
                    device = prepared.get(device_id)
                    if device is None:
                        device = prepared[device_id] = prep(device_id, connection, prepared=False)
                    params += [device, metric, tag, field, time, value]
                rows = ",".join(["(%s,%s,%s,%s,%s,%s)"] * len(chunk))
                cursor.execute(
                    f"INSERT INTO {table} (device_id, metric, tag, field, time, value) "  # noqa: S608 - no user text
                    f"VALUES {rows} ON CONFLICT DO NOTHING",
                    params,
                )
                written += max(cursor.rowcount, 0)
        return written

    @staticmethod
    def _device_condition(device_ids):
        """SQL and parameters selecting the devices: one id, a list of ids, or a queryset of devices."""
        prep = Point._meta.get_field("device").target_field.get_db_prep_value
        if isinstance(device_ids, str | uuid.UUID):
            return "device_id = %s", [prep(device_ids, connection, prepared=False)]
        if isinstance(device_ids, QuerySet):
            subquery, params = device_ids.values("pk").query.sql_with_params()
            return f"device_id IN ({subquery})", list(params)
        ids = [prep(device_id, connection, prepared=False) for device_id in device_ids] or [None]
        return f"device_id IN ({placeholders(ids)})", ids

    def aggregate(self, *, device_ids, metrics, start, end, bucket, by_device=False):
        # One statement over raw points and hourly rollups; written out because the ORM's per-row conversion
        # cost more than the query itself on a week of 5-minute data (docs/PERFORMANCE.md).
        devices, device_params = self._device_condition(device_ids)
        metrics = list(metrics)
        series = "device_id, metric, tag, field" if by_device else "metric, tag, field"
        bucket = int(bucket)
        selection = f"WHERE {devices} AND metric IN ({','.join(['%s'] * len(metrics))}) AND time >= %s AND time < %s"
        params = [*device_params, *metrics, start, end]
        if not self._any_rollup(selection, params):
            # the common case (a range inside the raw retention): raw points alone, no merge
            sql = (
                f"SELECT {series}, time / {bucket} AS bucket, COUNT(*), SUM(value), MIN(value), MAX(value) "  # noqa: S608
                f"FROM {Point._meta.db_table} {selection} GROUP BY {series}, time / {bucket} ORDER BY {series}, bucket"
            )
        else:
            sql = (
                f"SELECT {series}, bucket, SUM(n), SUM(total), MIN(low), MAX(high) FROM ("  # noqa: S608 - no user text
                f"SELECT {series}, time / {bucket} AS bucket, COUNT(*) AS n, SUM(value) AS total, MIN(value) AS low, "
                f"MAX(value) AS high FROM {Point._meta.db_table} {selection} GROUP BY {series}, time / {bucket} "
                f"UNION ALL SELECT {series}, time / {bucket}, SUM(count), SUM(sum), MIN(min), MAX(max) "
                f"FROM {Rollup._meta.db_table} {selection} GROUP BY {series}, time / {bucket}"
                f") merged GROUP BY {series}, bucket ORDER BY {series}, bucket"
            )
            params = params + params
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return self._buckets(cursor.fetchall(), bucket, by_device)

    @staticmethod
    def _any_rollup(selection, params):
        """Whether any rollup falls in the selection (one index probe)."""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {Rollup._meta.db_table} {selection} LIMIT 1", params)  # noqa: S608
            return cursor.fetchone() is not None

    @staticmethod
    def _buckets(rows, bucket, by_device):
        if not by_device:
            return [
                Bucket(metric, tag, field, int(index) * bucket, int(n), float(total), float(low), float(high))
                for metric, tag, field, index, n, total, low, high in rows
            ]
        result = defaultdict(list)
        for device_id, metric, tag, field, index, n, total, low, high in rows:
            result[as_uuid(device_id)].append(
                Bucket(metric, tag, field, int(index) * bucket, int(n), float(total), float(low), float(high))
            )
        return result

    def latest(self, *, device_id, metric, tag, fields, before):
        rows = (
            Point.objects.filter(device_id=device_id, metric=metric, tag=tag, field__in=fields, time__lt=before)
            .order_by("-time")
            .values_list("field", "value", "time")[: len(fields)]
        )
        rows = list(rows)
        if not rows:
            return {}
        newest = rows[0][2]
        return {field: value for field, value, time in rows if time == newest}

    def downsample(self, *, before):
        before -= before % HOUR
        point, rollup = Point._meta.db_table, Rollup._meta.db_table
        lowest, highest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
        # Normally every hour moves at once; the upsert folds in points of an already rolled-up hour that a device
        # sent late (offline backfill older than the raw retention).
        sql = (
            f"INSERT INTO {rollup} (device_id, metric, tag, field, time, count, sum, min, max) "  # noqa: S608
            f"SELECT device_id, metric, tag, field, (time / {HOUR}) * {HOUR}, COUNT(*), SUM(value), MIN(value), "
            f"MAX(value) FROM {point} WHERE time < %s GROUP BY device_id, metric, tag, field, (time / {HOUR}) "
            f"ON CONFLICT (device_id, metric, time, tag, field) DO UPDATE SET "
            f"count = {rollup}.count + excluded.count, sum = {rollup}.sum + excluded.sum, "
            f"min = {lowest}({rollup}.min, excluded.min), max = {highest}({rollup}.max, excluded.max)"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [before])
            deleted, _ = Point.objects.filter(time__lt=before).delete()
        return deleted

    def expire(self, *, before):
        deleted, _ = Rollup.objects.filter(time__lt=before).delete()
        return deleted


def get_backend() -> TimeSeriesBackend:
    return import_string(settings.NETFLEET_MONITORING_TIMESERIES_BACKEND)()
