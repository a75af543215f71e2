"""The time series store behind a small backend interface, with the SQL implementation on the main database.

A point is (device_id, metric, tag, field, time, value); `time` is an integer of microseconds since the epoch, so a
bucket is `time / bucket` (integer division) on SQLite and PostgreSQL alike. Writes are multi-row
`INSERT ... ON CONFLICT DO NOTHING` statements (no ORM object per point): a resent document's points collide with
the unique key (device, metric, time, tag, field) and are dropped. That key is also the index of a device's chart
query.

Hours are rolled up as they close into hourly rollups (count, sum, min, max per series): `rollup()` (beat, every
NETFLEET_MONITORING_ROLLUP_INTERVAL) counts the raw points of the hours before its `until` and advances a watermark,
`RollupProgress.rolled_up_until`: every raw point older than it is counted in a rollup, no newer one is. A point
that arrives late (offline backfill) older than the watermark is added to its hour's rollup by `write()` in the
same transaction, if it was new. Charts whose bucket is a whole number of hours read the rollups for the whole
rolled-up hours of their range and raw points only for the rest (the partial edges, the hours not rolled up yet):
the same count, sum, min and max as the raw points give, from about 12 times fewer rows. Raw points older than the
raw retention are deleted once rolled up (`downsample`, which moves `RollupProgress.downsampled_until`): below it,
every chart reads the rollups. Rollups older than their own retention are deleted (`expire`). The raw interface
counters (netjson.COUNTER_METRIC) only serve late-data deltas and are never rolled up.

On PostgreSQL (READ COMMITTED) a transaction writing a point of a closed hour could commit after a concurrent
rollup read that hour: writes of points older than the current hour hold a shared advisory lock from before they
read the watermark until they commit, and `rollup()` takes it exclusively. On SQLite write transactions are
serialized anyway. Points of the current hour need no lock: `rollup()` stops NETFLEET_MONITORING_ROLLUP_GRACE
before the hour that is closing, time enough for its writers to commit.

`get_backend()` returns the configured backend (NETFLEET_MONITORING_TIMESERIES_BACKEND), so a dedicated TSDB can
implement the same interface.
"""

import time as clock
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from netfleet.core.sql import as_uuid, placeholders, table

from .models import Point, Rollup, RollupProgress
from .netjson import COUNTER_METRIC

MICROSECONDS = 1_000_000
HOUR = 3600 * MICROSECONDS
WRITE_BATCH = 1000  # rows per INSERT: 6 parameters each (9 for rollups), well under SQLite's variable limit
UNROLLED_METRICS = frozenset({COUNTER_METRIC})  # kept raw only: charts never read them
ROLLUP_LOCK = int.from_bytes(b"nfrollup")  # PostgreSQL advisory lock key: rollups vs writers of closed hours
SERIES = {False: "metric, tag, field", True: "device_id, metric, tag, field"}  # columns of a series (by device)


def to_us(moment: datetime) -> int:
    """A timezone-aware datetime as integer microseconds since the epoch."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * MICROSECONDS + delta.microseconds


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value // MICROSECONDS, tz=UTC).replace(microsecond=value % MICROSECONDS)


def floor_hour(value: int) -> int:
    return value - value % HOUR


def ceil_hour(value: int) -> int:
    return floor_hour(value + HOUR - 1)


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
        """Store (device_id, metric, tag, field, time_us, value) tuples in batches; returns how many were new. New
        points of hours already rolled up (late data) are added to those hours' rollups in the same transaction."""
        raise NotImplementedError

    def aggregate(self, *, device_ids, metrics, start, end, bucket, by_device=False) -> list:
        """Buckets of `bucket` µs over [start, end) for these devices (ids or a queryset of devices) and metrics.
        With `by_device`, one list per device: {device_id: [Bucket]}."""
        raise NotImplementedError

    def sum_of_peaks(self, *, device_ids, metric, start, end, bucket) -> dict:
        """{bucket start: the sum over these devices' series of `metric` of each series' maximum in the bucket}."""
        raise NotImplementedError

    def latest(self, *, device_id, metric, tag, fields, before) -> dict:
        """{field: value} of the newest point of a series strictly before `before` (µs)."""
        raise NotImplementedError

    def rollup(self, *, until) -> int:
        """Count the raw points of every hour that ended by `until` (µs, rounded down to the hour) into the hourly
        rollups, once (running it again counts nothing twice); returns how many rollup rows were written."""
        raise NotImplementedError

    def downsample(self, *, before) -> int:
        """Roll up the raw points older than `before` (µs, rounded down to the hour), then delete them; returns how
        many were deleted."""
        raise NotImplementedError

    def expire(self, *, before) -> int:
        """Delete rollups older than `before` (µs)."""
        raise NotImplementedError


class SQLBackend(TimeSeriesBackend):
    # --- writes --------------------------------------------------------------------------------------------

    def write(self, points) -> int:
        points = list(points)
        if not points:
            return 0
        if connection.in_atomic_block:  # ingest's transaction: no savepoint
            return self._write(points)
        with transaction.atomic():  # the rollup of late points commits with them
            return self._write(points)

    def _write(self, points):
        oldest = min(point[4] for point in points)
        if oldest >= floor_hour(int(clock.time() * MICROSECONDS)):
            # live data, the common case: the rollups stop a grace before the current hour, so no point of it is
            # behind the watermark and there is nothing to read or lock
            return self._insert(points)
        # a closed hour: a concurrent rollup must either see these points or have moved the watermark first
        self._lock(exclusive=False)
        rolled_up_until, _ = self._progress()
        if oldest >= rolled_up_until:
            return self._insert(points)
        on_time, late = [], []
        for point in points:
            (late if point[4] < rolled_up_until and point[1] not in UNROLLED_METRICS else on_time).append(point)
        written = self._insert(on_time)
        inserted = self._insert(late, returning=True)  # not a resend's points: those are counted already
        self._add_to_rollups(inserted)
        return written + len(inserted)

    @staticmethod
    def _insert(points, returning=False):
        """INSERT ... ON CONFLICT DO NOTHING; how many rows were new, or with `returning` the new rows."""
        prep = Point._meta.get_field("device").target_field.get_db_prep_value
        written, rows = 0, []
        suffix = " RETURNING device_id, metric, tag, field, time, value" if returning else ""
        prepared = {}  # a batch holds few devices: convert each id once
        with connection.cursor() as cursor:
            for offset in range(0, len(points), WRITE_BATCH):
                chunk = points[offset : offset + WRITE_BATCH]
                params = []
                for device_id, metric, tag, field, time, value in chunk:
                    device = prepared.get(device_id)
                    if device is None:
                        device = prepared[device_id] = prep(device_id, connection, prepared=False)
                    params += [device, metric, tag, field, time, value]
                values = ",".join(["(%s,%s,%s,%s,%s,%s)"] * len(chunk))
                cursor.execute(
                    f"INSERT INTO {table(Point)} (device_id, metric, tag, field, time, value) "  # noqa: S608
                    f"VALUES {values} ON CONFLICT DO NOTHING{suffix}",
                    params,
                )
                if returning:
                    rows += cursor.fetchall()
                else:
                    written += max(cursor.rowcount, 0)
        return rows if returning else written

    def _add_to_rollups(self, rows):
        """Add raw rows (device_id as the database returned it, metric, tag, field, time, value) to their hours'
        rollups."""
        hours = {}
        for device_id, metric, tag, field, time, value in rows:
            key = (device_id, metric, floor_hour(time), tag, field)
            found = hours.get(key)
            if found is None:
                hours[key] = [1, value, value, value]
            else:
                found[0] += 1
                found[1] += value
                found[2] = min(found[2], value)
                found[3] = max(found[3], value)
        keys = sorted(hours)  # rows locked in one order by every writer
        with connection.cursor() as cursor:
            for offset in range(0, len(keys), WRITE_BATCH):
                chunk = keys[offset : offset + WRITE_BATCH]
                params = []
                for key in chunk:
                    params += [*key, *hours[key]]
                values = ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s)"] * len(chunk))
                cursor.execute(
                    f"INSERT INTO {table(Rollup)} (device_id, metric, time, tag, field, count, sum, min, max) "  # noqa: S608
                    f"VALUES {values} {self._additive_upsert()}",
                    params,
                )

    @staticmethod
    def _additive_upsert():
        rollup = table(Rollup)
        lowest, highest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
        return (
            "ON CONFLICT (device_id, metric, time, tag, field) DO UPDATE SET "
            f"count = {rollup}.count + excluded.count, sum = {rollup}.sum + excluded.sum, "
            f"min = {lowest}({rollup}.min, excluded.min), max = {highest}({rollup}.max, excluded.max)"
        )

    @staticmethod
    def _lock(*, exclusive):
        """The rollup lock until the transaction ends (PostgreSQL; SQLite serializes write transactions)."""
        if connection.vendor == "postgresql":
            function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {function}(%s)", [ROLLUP_LOCK])

    @staticmethod
    def _progress():
        """(rolled_up_until, downsampled_until); zeros before anything was rolled up."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT rolled_up_until, downsampled_until FROM {table(RollupProgress)} WHERE id = 1"  # noqa: S608
            )
            row = cursor.fetchone()
        return (row[0], row[1]) if row else (0, 0)

    @staticmethod
    def _locked_progress():
        progress, _ = RollupProgress.objects.select_for_update().get_or_create(pk=1)
        return progress

    # --- rollups and retention -----------------------------------------------------------------------------

    def rollup(self, *, until):
        # An hour per transaction: a long catch-up never holds the lock (SQLite's write lock) for long, and a run
        # that stops keeps what it did. Hours without points are skipped in one step.
        until = floor_hour(until)
        written = 0
        sql = (
            f"INSERT INTO {table(Rollup)} (device_id, metric, tag, field, time, count, sum, min, max) "  # noqa: S608
            f"SELECT device_id, metric, tag, field, (time / {HOUR}) * {HOUR}, COUNT(*), SUM(value), MIN(value), "
            f"MAX(value) FROM {table(Point)} WHERE time >= %s AND time < %s AND metric NOT IN "
            f"({placeholders(UNROLLED_METRICS)}) GROUP BY device_id, metric, tag, field, time / {HOUR} "
            f"{self._additive_upsert()}"
        )
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                self._lock(exclusive=True)
                progress = self._locked_progress()
                start = progress.rolled_up_until
                if start >= until:
                    return written
                cursor.execute(f"SELECT MIN(time) FROM {table(Point)} WHERE time >= %s", [start])  # noqa: S608
                first = cursor.fetchone()[0]
                if first is None or first >= until:
                    end = until
                else:
                    end = min(floor_hour(first) + HOUR, until)
                    cursor.execute(sql, [start, end, *sorted(UNROLLED_METRICS)])
                    written += max(cursor.rowcount, 0)
                progress.rolled_up_until = end
                progress.save(update_fields=["rolled_up_until"])

    def downsample(self, *, before):
        before = floor_hour(before)
        self.rollup(until=before)
        with transaction.atomic():
            progress = self._locked_progress()
            if progress.downsampled_until < before:
                # committed before the delete: a chart that reads it takes these hours from the rollups
                progress.downsampled_until = before
                progress.save(update_fields=["downsampled_until"])
        with transaction.atomic():
            deleted, _ = Point.objects.filter(time__lt=before).delete()
        return deleted

    def expire(self, *, before):
        deleted, _ = Rollup.objects.filter(time__lt=before).delete()
        return deleted

    # --- reads ---------------------------------------------------------------------------------------------

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

    def _sources(self, metrics, start, end, bucket):
        """([(start, end)] of raw points, [(start, end)] of rollups) that together hold [start, end) once."""
        if start >= end:
            return [], []
        if not UNROLLED_METRICS.isdisjoint(metrics):
            return [(start, end)], []
        rolled_up_until, downsampled_until = self._progress()
        if bucket % HOUR == 0:
            # the whole rolled-up hours from the rollups; raw points for the partial hours at the edges and the
            # hours not rolled up yet
            low, high = ceil_hour(start), min(floor_hour(end), rolled_up_until)
        else:
            # finer than an hour: raw points wherever they are kept, rollups (each in its hour's first bucket) for
            # the downsampled hours
            low, high = start, min(end, downsampled_until)
        if high <= low:
            return [(start, end)], []
        return [(first, last) for first, last in ((start, low), (high, end)) if first < last], [(low, high)]

    def _grouped(self, device_ids, metrics, start, end, bucket, by_device):
        """SELECT of (series..., bucket, n, total, low, high) per series (SERIES[by_device]) and bucket, and its
        parameters; None when the range is empty."""
        series = SERIES[by_device]
        devices, device_params = self._device_condition(device_ids)
        metrics = list(metrics)
        selection = f"WHERE {devices} AND metric IN ({placeholders(metrics)}) AND time >= %s AND time < %s"
        raw, rolled = self._sources(metrics, start, end, bucket)
        # Written out: the ORM's per-row conversion cost more than the query itself on a week of 5-minute data
        # (docs/PERFORMANCE.md).
        aggregates = "COUNT(*) AS n, SUM(value) AS total, MIN(value) AS low, MAX(value) AS high"
        branches, params = [], []
        for first, last in raw:
            branches.append(
                f"SELECT {series}, time / {bucket} AS bucket, {aggregates} FROM {table(Point)} {selection} "  # noqa: S608
                f"GROUP BY {series}, time / {bucket}"
            )
            params += [*device_params, *metrics, first, last]
        if not rolled:
            return (branches[0], params) if branches else None
        for first, last in rolled:
            branches.append(
                f"SELECT {series}, time / {bucket} AS bucket, count AS n, sum AS total, min AS low, max AS high "  # noqa: S608
                f"FROM {table(Rollup)} {selection}"
            )
            params += [*device_params, *metrics, first, last]
        if bucket == HOUR and (by_device or isinstance(device_ids, str | uuid.UUID)):
            # a rollup is one device's series in one hour, and the sources hold disjoint hours: no bucket of a
            # device's series is in two rows, so nothing to merge (a third of a 7 d chart's time)
            return " UNION ALL ".join(branches), params
        sql = (
            f"SELECT {series}, bucket, SUM(n) AS n, SUM(total) AS total, MIN(low) AS low, MAX(high) AS high "  # noqa: S608
            f"FROM ({' UNION ALL '.join(branches)}) merged GROUP BY {series}, bucket"
        )
        return sql, params

    def aggregate(self, *, device_ids, metrics, start, end, bucket, by_device=False):
        bucket = int(bucket)
        grouped = self._grouped(device_ids, metrics, start, end, bucket, by_device)
        if grouped is None:
            return self._buckets([], bucket, by_device)
        sql, params = grouped
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} ORDER BY {SERIES[by_device]}, bucket", params)
            return self._buckets(cursor.fetchall(), bucket, by_device)

    def sum_of_peaks(self, *, device_ids, metric, start, end, bucket):
        bucket = int(bucket)
        grouped = self._grouped(device_ids, [metric], start, end, bucket, by_device=True)
        if grouped is None:
            return {}
        sql, params = grouped
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT bucket, SUM(high) FROM ({sql}) peaks GROUP BY bucket", params)  # noqa: S608
            return {int(index) * bucket: total for index, total in cursor.fetchall()}

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


def get_backend() -> TimeSeriesBackend:
    return import_string(settings.NETFLEET_MONITORING_TIMESERIES_BACKEND)()
