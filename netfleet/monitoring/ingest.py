"""Metric ingest: NetJSON DeviceMonitoring documents become time series points, health and WiFi sessions.

The request validates its document in memory, then hands it on to be stored with others in one transaction — the
monitoring rows of their devices locked in one query, every point of every document in one multi-row INSERT (ON
CONFLICT DO NOTHING deduplicates resends), their metric health read in one query, the state written back in one
UPDATE. Health changes and WiFi sessions write only when something changed.

Under `netfleet serve` (`netfleet.wsgi` calls `use_spool()`), a document is appended to the worker's spool file
and answered; the monitoring writer process (`netfleet monitoring_writer`) stores the workers' spools in batches
(netfleet.core.spool). The spool is bounded, so storage that falls behind slows the answers down instead of piling
up a backlog (the reference system answered fast but stored 1-9 documents/s behind a queue that grew without
bound), and a worker that dies leaves its spool to the writer. Elsewhere (tests, commands) concurrent calls share a
group commit (netfleet.core.batching) and return once stored.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.utils import timezone

from netfleet.accounts.models import Organization
from netfleet.controller.models import Device
from netfleet.core.batching import GroupCommit
from netfleet.core.exceptions import Unavailable
from netfleet.core.spool import SpoolAppender, SpoolFull, SpoolReader
from netfleet.core.sql import as_uuid, json_param, loaded, placeholders, table, uuid_param

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
    is stored. Behind the spool, returns None once the document is spooled (Unavailable when the writer is too far
    behind); otherwise once stored, with the number of new points in its batch (0 when everything was a resend).

    Traffic counters become deltas against the document before it (a counter that went down was reset and
    counts whole). Only the newest document moves the counters, WiFi sessions and health forward; `current` (or
    no `time`) makes it the device's status data."""
    netjson.validate_document(document)
    item = Document(device, document, time, current, now or timezone.now())
    if _spool is not None:
        try:
            _spool.append(_encode(item))
        except SpoolFull:
            raise Unavailable("Metric storage is behind; send this document again later") from None
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


def spool_directory():
    return settings.DATA_DIR / "spool" / "monitoring"


def use_spool():
    """Hand documents to the spool writer from now on (the HTTP workers of `netfleet serve`, which runs the writer:
    `netfleet monitoring_writer`)."""
    global _spool
    # a worker more than ~200 documents (a fifth of a second at full load) ahead of the writer waits for it, so the
    # cores are shared between accepting and storing instead of the backlog growing
    _spool = SpoolAppender(spool_directory(), segment_bytes=1 << 20, max_lag_bytes=256 << 10)
    return _spool


def spool_reader(directory=None, **options):
    """The writer's end of the ingest spool."""
    # after a failed batch, a broken connection is replaced before the next attempt
    return SpoolReader(
        directory or spool_directory(),
        write_batch=_store_spooled,
        order=_received,
        recover=close_old_connections,
        unavailable=(OperationalError, InterfaceError),  # e.g. the database down or locked: retried, not dropped
        **options,
    )


def _store_spooled(lines):
    rows = [(int(line[:RECEIVED_DIGITS]), *orjson.loads(line[RECEIVED_DIGITS + 1 :])) for line in lines]
    devices = find_devices({device_id for _, device_id, *_ in rows})
    documents = [
        Document(devices[device_id], body, None if time_us is None else from_us(time_us), current, from_us(received))
        for received, device_id, time_us, current, body in rows
        if device_id in devices  # else deleted or deactivated since: its data is not kept
    ]
    if documents:
        store_documents(documents)


RECEIVED_DIGITS = 17  # a spool line starts with when it was received (µs, zero-padded): its order


def _encode(document):
    time_us = None if document.time is None else to_us(document.time)
    body = orjson.dumps([document.device.pk.hex, time_us, document.current, document.body])
    return b"%0*d %s" % (RECEIVED_DIGITS, to_us(document.received), body)


def _received(line):
    return line[:RECEIVED_DIGITS]


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
    return find_devices([device_id]).get(device_id)


def find_devices(device_ids):
    """{id: Device} of those of these ids (UUIDs or hex) that are active devices of active organizations, with the
    columns ingest needs, keyed as given."""
    given = {uuid_param(device_id): device_id for device_id in device_ids}
    if not given:
        return {}
    sql = (
        f"SELECT {', '.join('d.' + name for name in DEVICE_COLUMNS)} FROM {table(Device)} d "  # noqa: S608
        f"JOIN {table(Organization)} o ON o.id = d.organization_id "
        f"WHERE d.id IN ({placeholders(given)}) AND NOT d.is_deactivated AND o.is_active"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(given))
        rows = cursor.fetchall()
    found = {}
    for row in rows:
        values = [as_uuid(row[0]), as_uuid(row[1]), row[2] and as_uuid(row[2]), row[3], row[4], bool(row[5])]
        device = loaded(Device, DEVICE_COLUMNS, values)
        found[given[uuid_param(device.pk)]] = device
    return found


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
        cursor.execute(sql, [uuid_param(device_id) for device_id in device_ids])
        rows = cursor.fetchall()
    return {
        as_uuid(device_id): _State(
            as_uuid(device_id), status, json_field.from_db_value(raw_state, None, connection) or {}
        )
        for device_id, status, raw_state in rows
    }


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
        params.append(uuid_param(state.device_id))
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
        cursor.execute(sql, [uuid_param(device_id) for device_id in device_ids])
        rows = cursor.fetchall()
    split = len(metric_columns)
    for row in rows:
        values = [as_uuid(row[0]), as_uuid(row[1]), row[2], row[3], row[4], _aware(row[5]), _aware(row[6])]
        metric = loaded(Metric, metric_columns, values)
        custom = None
        if row[split] is not None:
            custom_values = [as_uuid(row[split]), metric.pk, *row[split + 2 :]]
            custom = loaded(AlertSettings, settings_columns, custom_values)
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
