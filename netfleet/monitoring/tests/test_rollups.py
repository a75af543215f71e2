"""Hourly rollups maintained as hours close: charts read them for the whole rolled-up hours and raw points for the
rest, with exactly the aggregates of the raw points; late points are counted once; retention keeps the values.

Values are multiples of 0.25 below 1,000, so every sum is exact whatever order the database adds them in."""

import importlib
import io
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction

from netfleet.controller.factories import make_device
from netfleet.controller.models import Device
from netfleet.monitoring import charts, services, tasks
from netfleet.monitoring.models import Point, Rollup, RollupProgress
from netfleet.monitoring.netjson import COUNTER_METRIC
from netfleet.monitoring.timeseries import HOUR, Bucket, ceil_hour, floor_hour, get_backend, to_us

from .conftest import document

pytestmark = pytest.mark.django_db

MINUTE = 60_000_000
DAY = 24 * HOUR
T0 = datetime(2024, 3, 1, tzinfo=UTC)
START = to_us(T0)
SERIES = (
    ("cpu", "", "cpu_usage"),
    ("traffic", "eth0", "rx_bytes"),
    ("traffic", "eth0", "tx_bytes"),
    ("wifi_clients", "wlan0", "clients"),
)


def history(device, *, start=START, hours=30, seed=7):
    """A point of every series every 5 minutes from 7 min 3 s past `start` (no point on an hour boundary), and the
    raw counters that are never rolled up."""
    rng = random.Random(seed)
    points = []
    for step in range(hours * 12):
        time = start + 7 * MINUTE + 3_000_000 + step * 5 * MINUTE
        points += [(device.pk, metric, tag, field, time, rng.randrange(4000) / 4) for metric, tag, field in SERIES]
        points.append((device.pk, COUNTER_METRIC, "eth0", "rx_counter", time, float(step)))
    return points


def raw_aggregate(points, start, end, bucket, metrics=charts.CHART_METRICS):
    """The oracle: buckets computed from the raw points in Python."""
    found = {}
    for _, metric, tag, field, time, value in points:
        if metric not in metrics or not start <= time < end:
            continue
        key = (metric, tag, field, time - time % bucket)
        count, total, low, high = found.get(key, (0, 0.0, value, value))
        found[key] = (count + 1, total + value, min(low, value), max(high, value))
    return [Bucket(*key, *found[key]) for key in sorted(found)]


def aggregate(device_ids, start, end, bucket, **kwargs):
    return get_backend().aggregate(
        device_ids=device_ids, metrics=charts.CHART_METRICS, start=start, end=end, bucket=bucket, **kwargs
    )


def progress():
    row = RollupProgress.objects.filter(pk=1).first()
    return (row.rolled_up_until, row.downsampled_until) if row else (0, 0)


def rollups(device):
    return sorted(
        Rollup.objects.filter(device=device).values_list("metric", "tag", "field", "time", "count", "sum", "min", "max")
    )


class TestChartsFromRollups:
    @pytest.mark.parametrize(
        ("start", "end", "bucket"),
        [
            (START, START + 31 * HOUR, HOUR),  # a 7 d chart's bucket
            (START + 25 * MINUTE, START + 29 * HOUR + 10 * MINUTE, HOUR),  # partial hours at both edges
            (START - 2 * DAY, START + 2 * DAY, DAY),  # a 30 d chart's
            (START - START % (7 * DAY), START - START % (7 * DAY) + 14 * DAY, 7 * DAY),  # a 365 d chart's
            (START, START + 31 * HOUR, 10 * MINUTE),  # finer than an hour: raw points only
        ],
    )
    @pytest.mark.parametrize("rolled_up", [20 * HOUR + 30 * MINUTE, 40 * HOUR])  # mid-history, or all of it
    def test_same_buckets_as_the_raw_points(self, device, start, end, bucket, rolled_up):
        points = history(device)
        get_backend().write(points)
        before = aggregate(device.pk, start, end, bucket)
        assert before == raw_aggregate(points, start, end, bucket) and before

        assert get_backend().rollup(until=START + rolled_up) > 0
        assert progress()[0] == floor_hour(START + rolled_up)
        assert aggregate(device.pk, start, end, bucket) == before  # nothing counted twice
        if bucket % HOUR == 0:
            # the whole rolled-up hours come from the rollups alone: without their raw points, the same buckets
            whole = (ceil_hour(start), min(floor_hour(end), floor_hour(START + rolled_up)))
            rolled = Point.objects.filter(time__gte=whole[0], time__lt=whole[1])
            assert rolled.delete()[0] > 0
            assert aggregate(device.pk, start, end, bucket) == before

    def test_by_device_and_device_querysets(self, organization):
        first, second = make_device(organization), make_device(organization)
        points = history(first) + history(second, seed=8)
        get_backend().write(points)
        start, end = START, START + 31 * HOUR
        devices = Device.objects.filter(pk__in=[first.pk, second.pk])
        before = [
            aggregate([first.pk, second.pk], start, end, HOUR, by_device=True),
            aggregate(devices, start, end, HOUR, by_device=True),
            aggregate(devices, start, end, HOUR),
        ]
        assert before[0][first.pk] == raw_aggregate(points[: len(points) // 2], start, end, HOUR)
        assert before[0] == before[1]
        assert before[2] == raw_aggregate(points, start, end, HOUR)
        get_backend().rollup(until=START + 24 * HOUR)
        assert [
            aggregate([first.pk, second.pk], start, end, HOUR, by_device=True),
            aggregate(devices, start, end, HOUR, by_device=True),
            aggregate(devices, start, end, HOUR),
        ] == before

    def test_the_7d_chart_before_and_after_the_rollup(self, device):
        now = datetime.now(UTC)
        span = charts.time_range({"time": "7d"}, now=now)
        points = history(device, start=span.start, hours=7 * 24 + 1)
        get_backend().write([point for point in points if point[4] <= to_us(now)])
        before = charts.device_charts(device, span)
        assert {chart["title"] for chart in before} == {
            "CPU Load",
            "Traffic: eth0",
            "WiFi clients: wlan0",
        }
        assert services.roll_up_points(now=now) > 0
        assert progress()[0] == floor_hour(to_us(now - timedelta(seconds=settings.NETFLEET_MONITORING_ROLLUP_GRACE)))
        assert charts.device_charts(device, span) == before

    def test_chart_endpoint_round_trip(self, device, admin_client):
        points = history(device, hours=4 * 24)
        get_backend().write(points)
        url = f"/api/v1/monitoring/device/{device.pk}/?start=2024-03-01 00:00:00&end=2024-03-05 00:00:00"
        before = admin_client.get(url).json()
        assert before["timeframe"]["bucket_seconds"] == 3600
        get_backend().rollup(until=START + 50 * HOUR)
        Point.objects.filter(time__lt=START + 50 * HOUR).delete()  # only the rollups hold those hours now
        assert admin_client.get(url).json() == before

    def test_counters_are_never_rolled_up(self, device):
        get_backend().write(history(device, hours=3))
        get_backend().rollup(until=START + 3 * HOUR)
        assert Rollup.objects.exists()
        assert not Rollup.objects.filter(metric=COUNTER_METRIC).exists()


class TestRollup:
    def test_twice_counts_nothing_twice(self, device):
        points = history(device, hours=6)
        get_backend().write(points)
        first = get_backend().rollup(until=START + 4 * HOUR)
        assert first == 4 * len(SERIES)  # a row per series and hour
        rows = rollups(device)
        assert get_backend().rollup(until=START + 4 * HOUR) == 0
        assert get_backend().rollup(until=START + 2 * HOUR) == 0  # never moves back
        assert rollups(device) == rows
        cpu = [row[3:5] for row in rows if row[:3] == SERIES[0]]
        assert cpu == [(START, 11), (START + HOUR, 12), (START + 2 * HOUR, 12), (START + 3 * HOUR, 12)]
        assert progress()[0] == START + 4 * HOUR
        assert get_backend().rollup(until=START + 5 * HOUR) == len(SERIES)  # the next hour only
        assert set(rows) < set(rollups(device)) and len(rollups(device)) == len(rows) + len(SERIES)
        assert aggregate(device.pk, START, START + 6 * HOUR, HOUR) == raw_aggregate(
            points, START, START + 6 * HOUR, HOUR
        )

    def test_skips_hours_without_points(self, device):
        get_backend().write(history(device, start=START + 100 * HOUR, hours=1))
        get_backend().rollup(until=START + 200 * HOUR)
        assert progress()[0] == START + 200 * HOUR
        assert {row[3] for row in rollups(device)} == {START + 100 * HOUR, START + 101 * HOUR}

    def test_service_stops_the_grace_before_the_closing_hour(self, device, settings):
        settings.NETFLEET_MONITORING_ROLLUP_GRACE = 120
        get_backend().write(history(device, hours=12))
        services.roll_up_points(now=T0 + timedelta(hours=10, minutes=1))  # 10:00 closed a minute ago
        assert progress()[0] == START + 9 * HOUR
        services.roll_up_points(now=T0 + timedelta(hours=10, minutes=3))
        assert progress()[0] == START + 10 * HOUR

    def test_beat_runs_it(self, settings):
        entry = settings.CELERY_BEAT_SCHEDULE["monitoring-roll-up-points"]
        assert entry["task"] == tasks.roll_up_points.name == "netfleet.monitoring.tasks.roll_up_points"
        assert entry["schedule"] == settings.NETFLEET_MONITORING_ROLLUP_INTERVAL == 300

    def test_task(self, device):
        now = datetime.now(UTC)
        closed = floor_hour(to_us(now)) - 3 * HOUR
        get_backend().write([(device.pk, "cpu", "", "cpu_usage", closed + MINUTE, 5.0)])
        tasks.roll_up_points.apply()
        assert rollups(device) == [("cpu", "", "cpu_usage", closed, 1, 5.0, 5.0, 5.0)]

    def test_management_command(self, device):
        now = datetime.now(UTC)
        closed = floor_hour(to_us(now)) - 3 * HOUR
        get_backend().write(
            [
                (device.pk, "cpu", "", "cpu_usage", closed + MINUTE, 5.0),
                (device.pk, "cpu", "", "cpu_usage", closed + 2 * MINUTE, 7.0),
                (device.pk, "cpu", "", "cpu_usage", to_us(now), 9.0),  # the current hour: not closed
            ]
        )
        out = io.StringIO()
        call_command("monitoring_rollup", stdout=out)
        assert rollups(device) == [("cpu", "", "cpu_usage", closed, 2, 12.0, 5.0, 7.0)]
        assert progress()[0] >= closed + HOUR
        assert "1 rollup row(s) written" in out.getvalue()
        call_command("monitoring_rollup", stdout=out)
        assert rollups(device) == [("cpu", "", "cpu_usage", closed, 2, 12.0, 5.0, 7.0)]


class TestLatePoints:
    def test_a_late_point_counts_once(self, device):
        points = history(device, hours=3)
        get_backend().write(points)
        get_backend().rollup(until=START + 3 * HOUR)
        hour = START + HOUR
        late = [
            (device.pk, "cpu", "", "cpu_usage", hour + MINUTE, 999.75),  # new, in a rolled-up hour
            (device.pk, COUNTER_METRIC, "eth0", "rx_counter", hour + MINUTE, 1.0),  # new, never rolled up
            points[0],  # a resend
        ]
        assert get_backend().write(late) == 2
        assert get_backend().write(late) == 0  # all resent: nothing added
        everything = [*points, *late[:2]]
        row = Rollup.objects.get(device=device, metric="cpu", time=hour)
        cpu = [point[5] for point in everything if point[1] == "cpu" and hour <= point[4] < hour + HOUR]
        assert (row.count, row.sum, row.min, row.max) == (13, sum(cpu), min(cpu), max(cpu)) and row.max == 999.75
        assert not Rollup.objects.filter(metric=COUNTER_METRIC).exists()
        get_backend().rollup(until=START + 4 * HOUR)
        assert Rollup.objects.get(device=device, metric="cpu", time=hour).count == 13
        span = (START, START + 4 * HOUR)
        assert aggregate(device.pk, *span, HOUR) == raw_aggregate(everything, *span, HOUR)

    def test_backfilled_document_through_ingest(self, device, post_document, admin_client):
        url = f"/api/v1/monitoring/device/{device.pk}/?start=2024-03-01 00:00:00&end=2024-03-05 00:00:00"

        def cpu_trace():
            body = admin_client.get(url).json()
            return dict(next(chart for chart in body["charts"] if chart["title"] == "CPU Load")["traces"])["cpu_usage"]

        for minute, load in ((0, 0.5), (5, 1.0), (70, 0.2)):  # cpu 25 %, 50 %; 10 % in the next hour
            post_document(device, document(load=load), time=T0 + timedelta(minutes=minute))
        get_backend().rollup(until=START + 2 * HOUR)
        assert cpu_trace()[:3] == [37.5, 10, None]
        backfill = document(load=1.5)  # 75 %, collected at 00:10 while offline, sent now
        assert post_document(device, backfill, time=T0 + timedelta(minutes=10)).status_code == 200
        assert cpu_trace()[:3] == [50, 10, None]  # (25 + 50 + 75) / 3
        assert post_document(device, backfill, time=T0 + timedelta(minutes=10)).status_code == 200  # resent
        assert cpu_trace()[:3] == [50, 10, None]
        assert Rollup.objects.get(device=device, metric="cpu", time=START).count == 3

    @pytest.mark.django_db(transaction=True)
    def test_a_rollup_waits_for_a_writer_of_a_closed_hour(self, device):
        """PostgreSQL (READ COMMITTED): a rollup must not read an hour while a transaction writing into it is open,
        or that point would never be counted."""
        if connection.vendor != "postgresql":
            pytest.skip("SQLite serializes write transactions")
        RollupProgress.objects.update_or_create(pk=1, defaults={"rolled_up_until": START})
        written, release, rolled = threading.Event(), threading.Event(), threading.Event()
        errors = []

        def write():
            try:
                with transaction.atomic():
                    get_backend().write([(device.pk, "cpu", "", "cpu_usage", START + 5 * MINUTE, 3.0)])
                    written.set()
                    release.wait(10)
            except Exception as exc:  # reported by the test
                errors.append(exc)
            finally:
                connection.close()

        def roll_up():
            try:
                get_backend().rollup(until=START + 2 * HOUR)
                rolled.set()
            except Exception as exc:
                errors.append(exc)
            finally:
                connection.close()

        writer = threading.Thread(target=write)
        writer.start()
        assert written.wait(10)
        roller = threading.Thread(target=roll_up)
        roller.start()
        assert not rolled.wait(1)  # waits for the writer's commit
        release.set()
        writer.join(10)
        roller.join(10)
        assert errors == [] and rolled.is_set()
        assert rollups(device) == [("cpu", "", "cpu_usage", START, 1, 3.0, 3.0, 3.0)]


class TestRetention:
    NOW = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)

    def test_downsampled_hours_keep_their_chart_values(self, device, settings):
        settings.NETFLEET_MONITORING_RAW_RETENTION_DAYS = 7
        horizon = to_us(self.NOW - timedelta(days=7))
        points = history(device, start=horizon - 20 * HOUR, hours=30)  # 20 hours past the retention, 10 within
        get_backend().write(points)
        span = (horizon - 24 * HOUR, horizon + 12 * HOUR)
        hourly = aggregate(device.pk, *span, HOUR)
        fine = aggregate(device.pk, horizon, span[1], 10 * MINUTE)
        result = services.apply_retention(now=self.NOW)
        assert result["downsampled"] == sum(1 for point in points if point[4] < horizon)  # raw counters too
        assert not Point.objects.filter(time__lt=horizon).exists()
        assert progress() == (horizon, horizon)
        assert aggregate(device.pk, *span, HOUR) == hourly == raw_aggregate(points, *span, HOUR)
        assert aggregate(device.pk, horizon, span[1], 10 * MINUTE) == fine
        # finer than an hour, a downsampled hour's aggregates fall in its first bucket (only rollups remain)
        assert aggregate(device.pk, span[0], horizon, 10 * MINUTE) == raw_aggregate(points, span[0], horizon, HOUR)

    def test_after_the_beat_rolled_up_further(self, device, settings):
        settings.NETFLEET_MONITORING_RAW_RETENTION_DAYS = 7
        horizon = to_us(self.NOW - timedelta(days=7))
        points = history(device, start=horizon - 5 * HOUR, hours=10)
        get_backend().write(points)
        get_backend().rollup(until=horizon + 5 * HOUR)
        rows = rollups(device)
        services.apply_retention(now=self.NOW)
        assert rollups(device) == rows  # nothing rolled up again
        assert progress() == (horizon + 5 * HOUR, horizon)
        span = (horizon - 6 * HOUR, horizon + 6 * HOUR)
        assert aggregate(device.pk, *span, HOUR) == raw_aggregate(points, *span, HOUR)


def test_migration_continues_where_downsampling_stopped(device):
    """Before the watermark, rollups held the downsampled hours only; raw points older than the newest of them
    could only be late ones that the next downsampling would have folded in."""
    migration = importlib.import_module("netfleet.monitoring.migrations.0003_rollup_progress")
    RollupProgress.objects.all().delete()
    Rollup.objects.create(
        device=device, metric="cpu", tag="", field="cpu_usage", time=START, count=2, sum=3, min=1, max=2
    )
    Rollup.objects.create(
        device=device, metric="cpu", tag="", field="cpu_usage", time=START + HOUR, count=1, sum=4, min=4, max=4
    )
    get_backend().write(
        [
            (device.pk, "cpu", "", "cpu_usage", START + 5 * MINUTE, 8.0),  # late, after the last downsampling
            (device.pk, COUNTER_METRIC, "eth0", "rx_counter", START + 5 * MINUTE, 8.0),
            (device.pk, "cpu", "", "cpu_usage", START + 2 * HOUR, 16.0),  # within the raw retention
        ]
    )
    migration.start_where_downsampling_stopped(apps, None)
    assert progress() == (START + 2 * HOUR, START + 2 * HOUR)
    assert rollups(device) == [
        ("cpu", "", "cpu_usage", START, 3, 11.0, 1.0, 8.0),
        ("cpu", "", "cpu_usage", START + HOUR, 1, 4.0, 4.0, 4.0),
    ]
    assert list(Point.objects.values_list("time", flat=True)) == [START + 2 * HOUR]
    assert aggregate(device.pk, START, START + 3 * HOUR, HOUR) == [
        Bucket("cpu", "", "cpu_usage", START, 3, 11.0, 1.0, 8.0),
        Bucket("cpu", "", "cpu_usage", START + HOUR, 1, 4.0, 4.0, 4.0),
        Bucket("cpu", "", "cpu_usage", START + 2 * HOUR, 1, 16.0, 16.0, 16.0),
    ]
