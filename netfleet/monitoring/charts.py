"""Chart data: time ranges and buckets as the reference system chooses them, traces, summaries, fleet charts."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count
from django.utils import timezone

from netfleet.core.exceptions import NetfleetError

from .choices import MonitoringStatus
from .timeseries import MICROSECONDS, from_us, get_backend, to_us

MINUTE = 60 * MICROSECONDS
DAY = 1440 * MINUTE
# time frame -> (span, bucket)
TIMEFRAMES = {
    "1d": (DAY, 10 * MINUTE),
    "3d": (3 * DAY, 20 * MINUTE),
    "7d": (7 * DAY, 60 * MINUTE),
    "30d": (30 * DAY, 1440 * MINUTE),
    "365d": (365 * DAY, 7 * DAY),
}
DEFAULT_TIMEFRAME = "7d"
RANGE_FORMAT = "%Y-%m-%d %H:%M:%S"


class BadRange(NetfleetError):
    status_code = 400
    default_message = "Invalid time range"


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: int  # µs, first bucket's start
    end: int  # µs, exclusive
    bucket: int  # µs

    @property
    def x(self):
        return list(range(self.start, self.end, self.bucket))


def _parse_moment(name, raw):
    try:
        return datetime.strptime(raw.strip(), RANGE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise BadRange(
            f"{name} must be in the format YYYY-MM-DD H:M:S",
            details=[{"field": f"query.{name}", "message": "Expected YYYY-MM-DD H:M:S", "type": "invalid"}],
        ) from None


def time_range(params, now=None):
    """The range of a chart request: `time` (1d, 3d, 7d, 30d, 365d; default 7d) or `start` and `end`
    (YYYY-MM-DD H:M:S, UTC); the bucket of a custom range is that of the shortest time frame that covers it."""
    now = to_us(now or timezone.now())
    start, end = params.get("start"), params.get("end")
    if start is not None or end is not None:
        for name, value in (("start", start), ("end", end)):
            if not value:
                raise BadRange(
                    "start and end must be given together",
                    details=[{"field": f"query.{name}", "message": "This parameter is required.", "type": "required"}],
                )
        begin, finish = to_us(_parse_moment("start", start)), to_us(_parse_moment("end", end))
        if finish <= begin:
            raise BadRange(
                "end must be after start",
                details=[{"field": "query.end", "message": "Must be after start.", "type": "invalid"}],
            )
        span = finish - begin
        bucket = next((b for s, b in TIMEFRAMES.values() if s >= span), TIMEFRAMES["365d"][1])
    else:
        frame = params.get("time") or DEFAULT_TIMEFRAME
        if frame not in TIMEFRAMES:
            raise BadRange(
                f"time must be one of {', '.join(TIMEFRAMES)}",
                details=[
                    {"field": "query.time", "message": f"Unknown time frame {frame!r}.", "type": "invalid_choice"}
                ],
            )
        span, bucket = TIMEFRAMES[frame]
        begin, finish = now - span, now + 1
    first = begin - begin % bucket
    last = finish - finish % bucket + (bucket if finish % bucket else 0)
    return TimeRange(first, last, bucket)


@dataclass(frozen=True, slots=True)
class ChartSpec:
    metric: str
    title: str
    description: str
    unit: str
    aggregate: str  # sum | avg | max | percent (avg x 100)
    traces: tuple  # ((field, label), ...)
    chart_type: str = "scatter"


CHARTS = (
    ChartSpec("ping", "Uptime", "A value of 100% means reachable, 0% means unreachable.", "%", "percent",
              (("reachable", "uptime"),), "bar"),
    ChartSpec("ping", "Packet loss", "Packet loss of the ping checks.", "%", "avg", (("loss", "packet_loss"),), "bar"),
    ChartSpec("ping", "Round Trip Time", "Round trip time of the ping checks, in milliseconds.", "ms", "avg",
              (("rtt_avg", "rtt_avg"), ("rtt_max", "rtt_max"), ("rtt_min", "rtt_min"))),
    ChartSpec("traffic", "Traffic: {tag}", "Bytes sent (upload) and received (download) by the interface.", "bytes",
              "sum", (("tx_bytes", "upload"), ("rx_bytes", "download")), "stackedbar"),
    ChartSpec("wifi_clients", "WiFi clients: {tag}", "Distinct WiFi clients associated to the interface.", "clients",
              "max", (("clients", "wifi_clients"),), "bar"),
    ChartSpec("cpu", "CPU Load", "CPU usage: 100 x 1-minute load average / CPUs.", "%", "avg",
              (("cpu_usage", "cpu_usage"),)),
    ChartSpec("memory", "Memory Usage", "Percentage of memory in use.", "%", "avg",
              (("percent_used", "memory_usage"),)),
    ChartSpec("disk", "Disk Usage", "Used space across mounted file systems.", "%", "avg",
              (("used_disk", "disk_usage"),)),
    ChartSpec("signal_strength", "Signal Strength: {tag}", "Mobile signal strength.", "dBm", "avg",
              (("rssi", "signal_strength"), ("rsrp", "signal_power"))),
    ChartSpec("signal_quality", "Signal Quality: {tag}", "Mobile signal quality.", "dB", "avg",
              (("rsrq", "signal_quality"), ("snr", "snr"), ("sinr", "sinr"), ("ecio", "ecio"))),
    ChartSpec("access_tech", "Access Technology: {tag}", "Mobile access technology (2G ... 5G).", "G", "max",
              (("access_tech", "access_tech"),)),
)  # fmt: skip
CHART_METRICS = sorted({spec.metric for spec in CHARTS})


def _number(value):
    if value is None:
        return None
    value = round(value, 2)
    return int(value) if value == int(value) else value


def _bucket_value(bucket, aggregate):
    if aggregate == "sum":
        return bucket.sum
    if aggregate == "max":
        return bucket.max
    average = bucket.sum / bucket.count
    return average * 100 if aggregate == "percent" else average


def _summary(buckets, aggregate):
    if not buckets:
        return None
    if aggregate == "sum":
        return sum(b.sum for b in buckets)
    if aggregate == "max":
        return max(b.max for b in buckets)
    average = sum(b.sum for b in buckets) / sum(b.count for b in buckets)
    return average * 100 if aggregate == "percent" else average


def iso(us):
    return from_us(us).isoformat().replace("+00:00", "Z")


def build_charts(buckets, span):
    """Charts of one device from its buckets: one chart per spec and tag that has data."""
    by_series = {}
    for bucket in buckets:
        by_series.setdefault((bucket.metric, bucket.tag, bucket.field), []).append(bucket)
    x = span.x
    labels = [iso(t) for t in x]
    charts = []
    for spec in CHARTS:
        fields = {field for field, _ in spec.traces}
        tags = sorted({tag for metric, tag, field in by_series if metric == spec.metric and field in fields})
        for tag in tags:
            traces, summary = [], {}
            for field, label in spec.traces:
                series = by_series.get((spec.metric, tag, field))
                if not series:
                    continue
                values = {b.time: _bucket_value(b, spec.aggregate) for b in series}
                traces.append([label, [_number(values.get(t)) for t in x]])
                summary[label] = _number(_summary(series, spec.aggregate))
            charts.append(
                {
                    "type": spec.chart_type,
                    "title": spec.title.format(tag=tag),
                    "description": spec.description,
                    "unit": spec.unit,
                    "metric": spec.metric,
                    "interface": tag or None,
                    "summary": summary,
                    "x": labels,
                    "traces": traces,
                }
            )
    return charts


def device_charts(device, span):
    buckets = get_backend().aggregate(
        device_ids=device.pk, metrics=CHART_METRICS, start=span.start, end=span.end, bucket=span.bucket
    )
    return build_charts(buckets, span)


# --- dashboard -------------------------------------------------------------------------------------------


def status_counts(devices):
    """{status: count} of these devices (devices never monitored are `unknown`)."""
    counts = dict.fromkeys(MonitoringStatus.values, 0)
    rows = devices.values("is_deactivated", "monitoring__status").annotate(n=Count("pk")).order_by()
    for row in rows:
        status = MonitoringStatus.DEACTIVATED if row["is_deactivated"] else row["monitoring__status"]
        counts[status or MonitoringStatus.UNKNOWN] += row["n"]
    return counts


def _fleet_clients(device_ids, span):
    """{bucket start: clients}: per device interface the bucket's maximum, summed over the fleet."""
    return get_backend().sum_of_peaks(
        device_ids=device_ids, metric="wifi_clients", start=span.start, end=span.end, bucket=span.bucket
    )


def fleet_charts(devices, span):
    """Traffic (upload/download summed over the fleet) and WiFi clients of these devices."""
    device_ids = devices.values("pk")
    buckets = get_backend().aggregate(
        device_ids=device_ids, metrics=["traffic"], start=span.start, end=span.end, bucket=span.bucket
    )
    x = span.x
    totals = {"tx_bytes": {}, "rx_bytes": {}}
    for bucket in buckets:
        if bucket.field in totals:
            totals[bucket.field][bucket.time] = totals[bucket.field].get(bucket.time, 0) + bucket.sum
    clients = _fleet_clients(device_ids, span)
    labels = [iso(t) for t in x]
    traffic = [
        ["upload", [_number(totals["tx_bytes"].get(t)) for t in x]],
        ["download", [_number(totals["rx_bytes"].get(t)) for t in x]],
    ]
    return [
        {
            "type": "stackedbar",
            "title": "General Traffic",
            "description": "Bytes sent (upload) and received (download) by the devices' interfaces.",
            "unit": "bytes",
            "summary": {
                "upload": _number(sum(totals["tx_bytes"].values())),
                "download": _number(sum(totals["rx_bytes"].values())),
            },
            "x": labels,
            "traces": traffic,
        },
        {
            "type": "bar",
            "title": "General WiFi Clients",
            "description": "WiFi clients associated to the devices (the peak of each interface, summed).",
            "unit": "clients",
            "summary": {"wifi_clients": _number(max(clients.values())) if clients else None},
            "x": labels,
            "traces": [["wifi_clients", [_number(clients.get(t)) for t in x]]],
        },
    ]


def timeframe_of(span):
    return {"start": iso(span.start), "end": iso(span.end), "bucket_seconds": span.bucket // MICROSECONDS}
