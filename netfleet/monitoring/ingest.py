"""Metric ingest: NetJSON DeviceMonitoring documents become time series points, health and WiFi sessions.

The request validates its document in memory, then hands it on to be stored with others in one transaction — the
monitoring rows of their devices locked in one query, every point of every document in one multi-row INSERT (ON
CONFLICT DO NOTHING deduplicates resends), their metric health read in one query, the state written back in one
UPDATE. Health changes and WiFi sessions write only when something changed.

In the HTTP server (`netfleet.wsgi` calls `use_spool()`), a document is appended to the process's spool file and
answered; the process's writer thread stores everything spooled meanwhile in one batch (netfleet.core.spool).
The spool is bounded, so storage that falls behind slows the answers down instead of piling up a backlog (the
reference system answered fast but stored 1-9 documents/s behind a queue that grew without bound), and a process
that dies leaves its spool to be stored by the next writer. Elsewhere (tests, commands) concurrent calls share a
group commit (netfleet.core.batching) and return once stored.
"""

import atexit
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction
from django.utils import timezone

from netfleet.accounts.models import Organization
from netfleet.controller.models import Device
from netfleet.core.batching import GroupCommit
from netfleet.core.spool import SpooledWriter
from netfleet.core.sql import as_uuid, json_param, placeholders, table

from . import netjson
from .choices import HealthMetric
from .models import AlertSettings, DeviceMonitoring, Metric
from .services import evaluate_health, update_wifi_sessions
from .timeseries import from_us, get_backend, to_us


@dataclass(slots=True)
class Document:
    device: object  # controller Device
    body: dict  # a valid NetJSON DeviceMonitoring document
    time: datetime | None  # when it was collected (None: now)
    current: bool
    received: datetime

    @property
    def moment(self):
        return self.time or self.received


def ingest(*, device, document, time=None, current=False, now=None):
    """Validate and store a document collected at `time` (default: now). Raises InvalidDocument before anything
    is stored. Returns the number of new points in its batch (0 when everything was a resend).

    Traffic counters become deltas against the document before it (a counter that went down was reset and
    counts whole). Only the newest document moves the counters, WiFi sessions and health forward; `current` (or
    no `time`) makes it the device's status data."""
    netjson.validate_document(document)
    item = Document(device, document, time, current, now or timezone.now())
    if _spool is not None:
        _spool.submit(item)
        return None
    return _group_commit.submit(item)


def store_documents(documents):
    """Store valid documents in one transaction; one result (new points of the batch) per document."""
    backend = get_backend()
    device_ids = sorted({document.device.pk for document in documents})
    with transaction.atomic():
        states = _locked_states(device_ids)
        metrics = _metrics(device_ids)
        points, created_metrics = _Points(backend), []
        for document in sorted(documents, key=lambda document: document.moment):
            _apply(document, states[document.device.pk], metrics[document.device.pk], points, created_metrics)
        Metric.objects.bulk_create(created_metrics)  # a device's first document
        _save_states(states.values())
        points.flush()
    return [points.written] * len(documents)


_group_commit = GroupCommit(store_documents)
_spool = None


def use_spool():
    """Store documents behind the spool from now on (the HTTP server's processes); returns the writer."""
    global _spool
    if _spool is None:
        directory = settings.DATA_DIR / "spool" / "monitoring"
        _spool = spool_writer(directory, max_pending=settings.NETFLEET_MONITORING_SPOOL_MAX_PENDING)
        atexit.register(_spool.stop)  # a clean shutdown stores what it accepted; a crash leaves it spooled
    return _spool


def spool_writer(directory, **options):
    return SpooledWriter(
        directory,
        write_batch=_store_spooled,
        encode=_encode,
        decode=_decode,
        finish=connections.close_all,  # the writer thread's own connection
        **options,
    )


def _store_spooled(documents):
    try:
        store_documents(documents)
    finally:
        close_old_connections()  # as after a request: a broken connection is replaced, an old one renewed


def _encode(document):
    time_us = None if document.time is None else to_us(document.time)
    return orjson.dumps([document.device.pk.hex, time_us, document.current, to_us(document.received), document.body])


def _decode(line):
    device_id, time_us, current, received_us, body = orjson.loads(line)
    device = find_device(device_id)
    if device is None:
        return None  # deleted or deactivated since: its data is not kept
    return Document(device, body, None if time_us is None else from_us(time_us), current, from_us(received_us))


class _Points:
    """The batch's points, written in one INSERT (or more when late data needs the earlier ones stored)."""

    def __init__(self, backend):
        self.backend = backend
        self.pending = []
        self.written = 0

    def flush(self):
        self.written += self.backend.write(self.pending)
        self.pending = []


# The statements below are written out rather than built by the ORM: on this path, compiling a query costs ten
# times more than running it (docs/PERFORMANCE.md). They stay portable (SQLite and PostgreSQL) and use the models'
# field preparation for every value they write.


@dataclass(slots=True)
class _State:
    """What ingest reads and writes of a device's DeviceMonitoring row (evaluate_health sets the status)."""

    device_id: object
    status: str
    ingest_state: dict
    status_changed: datetime | None = None  # set only when the status changes
    status_data: dict | None = None  # set only by a current document
    last_data_time: datetime | None = None


DEVICE_COLUMNS = ["id", "organization_id", "site_id", "name", "key", "is_deactivated"]  # in the model's order


def find_device(device_id):
    """The active device (of an active organization) an ingest is for, with the columns ingest needs; or None."""
    sql = (
        f"SELECT {', '.join('d.' + name for name in DEVICE_COLUMNS)} FROM {table(Device)} d "  # noqa: S608
        f"JOIN {table(Organization)} o ON o.id = d.organization_id "
        "WHERE d.id = %s AND NOT d.is_deactivated AND o.is_active"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_device_param(device_id)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = [as_uuid(row[0]), as_uuid(row[1]), row[2] and as_uuid(row[2]), row[3], row[4], bool(row[5])]
    return Device.from_db(connection.alias, DEVICE_COLUMNS, values)


def _locked_states(device_ids):
    states = _select_states(device_ids)
    missing = [device_id for device_id in device_ids if device_id not in states]
    if missing:
        DeviceMonitoring.objects.bulk_create(
            [DeviceMonitoring(device_id=device_id) for device_id in missing], ignore_conflicts=True
        )
        states.update(_select_states(missing))
    return states


def _select_states(device_ids):
    json_field = DeviceMonitoring._meta.get_field("ingest_state")
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""  # SQLite: BEGIN IMMEDIATE locked
    sql = (
        f"SELECT device_id, status, ingest_state FROM {table(DeviceMonitoring)} "  # noqa: S608 - no user text
        f"WHERE device_id IN ({placeholders(device_ids)}) ORDER BY device_id{lock}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_device_param(device_id) for device_id in device_ids])
        rows = cursor.fetchall()
    return {
        as_uuid(device_id): _State(
            as_uuid(device_id), status, json_field.from_db_value(raw_state, None, connection) or {}
        )
        for device_id, status, raw_state in rows
    }


def _device_param(device_id):
    return DeviceMonitoring._meta.get_field("device").target_field.get_db_prep_value(device_id, connection)


def _save_states(states):
    """One UPDATE per row, sent together; the status data only for the rows that got a current document."""
    moment = DeviceMonitoring._meta.get_field("last_data_time")
    now = timezone.now()
    statements = {}
    for state in states:
        params = [
            moment.get_db_prep_save(state.last_data_time, connection),
            moment.get_db_prep_save(now, connection),
            json_param(state.ingest_state),
            state.status,
            moment.get_db_prep_save(state.status_changed, connection),
        ]
        with_data = state.status_data is not None
        if with_data:
            params.append(json_param(state.status_data))
        params.append(_device_param(state.device_id))
        statements.setdefault(with_data, []).append(params)
    monitoring_table = table(DeviceMonitoring)
    with connection.cursor() as cursor:
        for with_data, rows in statements.items():
            extra = ", status_data = %s" if with_data else ""
            cursor.executemany(
                f"UPDATE {monitoring_table} SET last_data_time = %s, modified = %s, ingest_state = %s, status = %s, "  # noqa: S608
                f"status_changed = COALESCE(%s, status_changed){extra} WHERE device_id = %s",
                rows,
            )


def _metrics(device_ids):
    """{device_id: {key: Metric}} with each metric's alert settings (or None) attached, in one statement."""
    found = {device_id: {} for device_id in device_ids}
    metric_columns = ["id", "device_id", "key", "is_healthy", "is_healthy_tolerant", "crossed_since", "changed"]
    settings_columns = ["id", "metric_id", "operator", "threshold", "tolerance", "is_active"]
    sql = (
        f"SELECT {', '.join('m.' + name for name in metric_columns)}, "  # noqa: S608 - no user text
        f"{', '.join('a.' + name for name in settings_columns)} "
        f"FROM {table(Metric)} m LEFT JOIN {table(AlertSettings)} a ON a.metric_id = m.id "
        f"WHERE m.device_id IN ({placeholders(device_ids)})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_device_param(device_id) for device_id in device_ids])
        rows = cursor.fetchall()
    split = len(metric_columns)
    for row in rows:
        values = [as_uuid(row[0]), as_uuid(row[1]), row[2], row[3], row[4], _aware(row[5]), _aware(row[6])]
        metric = Metric.from_db(connection.alias, metric_columns, values)
        custom = None
        if row[split] is not None:
            custom_values = [as_uuid(row[split]), metric.pk, *row[split + 2 :]]
            custom = AlertSettings.from_db(connection.alias, settings_columns, custom_values)
        metric._state.fields_cache["alert_settings"] = custom  # what rule_for reads: no query per metric
        found[metric.device_id][metric.key] = metric
    return found


def _aware(value):
    """SQLite's driver gives naive UTC datetimes where the ORM would give aware ones."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _apply(document, monitoring, metrics, points, created_metrics):
    """Derive one document's points (added to `points`) and move its device's state, health and WiFi sessions
    forward (in memory, except health changes and sessions)."""
    device, body, moment = document.device, document.body, document.moment
    time_us = to_us(moment)
    state = monitoring.ingest_state or {}
    newest = state.get("time") is None or time_us > state["time"]
    if newest:
        previous = state.get("counters", {})
    else:
        # late data or a resend: the counters stored just before it (this batch's earlier points included)
        points.flush()
        previous = _stored_counters(points.backend, device, body, time_us)
    derived = netjson.derive(body, previous)
    monitoring.last_data_time = document.received
    if document.current or document.time is None:
        monitoring.status_data = body
    if newest:
        clients = state.get("clients", {})
        if "interfaces" in body:
            clients = update_wifi_sessions(device=device, previous=clients, seen=derived.clients, time=moment)
        monitoring.ingest_state = {"time": time_us, "counters": derived.counters, "clients": clients}
        values = {**derived.health, HealthMetric.DATA_COLLECTED: 1}
        evaluate_health(
            device=device, monitoring=monitoring, values=values, time=moment, metrics=metrics, created=created_metrics
        )
    points.pending += [(device.pk, metric, tag, field, time_us, value) for metric, tag, field, value in derived.points]


def _stored_counters(backend, device, body, time_us):
    previous = {}
    for interface in body.get("interfaces") or []:
        name = interface["name"]
        stored = backend.latest(
            device_id=device.pk,
            metric=netjson.COUNTER_METRIC,
            tag=name,
            fields=("rx_counter", "tx_counter"),
            before=time_us,
        )
        if stored:
            previous[name] = [stored.get("rx_counter"), stored.get("tx_counter")]
    return previous
