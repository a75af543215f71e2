"""Connections services: credentials, device connections, commands and configuration pushes.

Device work runs in Celery tasks and never in a request. The SSH part of it is asyncio (one event loop per task,
a semaphore bounding how many devices it talks to at once); the database is read before and written after, or for
commands as their results arrive (the loop then runs in a thread of its own while the task's thread stores what
it reports), so connectors never touch the ORM.
"""

import asyncio
import hashlib
import json
import logging
import queue
import shlex
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection as database
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from netfleet.controller import services as controller_services
from netfleet.controller.choices import ConfigStatus
from netfleet.controller.models import Config, Device
from netfleet.core.exceptions import Conflict
from netfleet.core.sql import as_uuid, table, uuid_param

from .choices import CommandStatus, UpdateStrategy
from .commands import get_command_type
from .connectors import ConnectionFailed, get_connector
from .models import Command, Credentials, DeviceConnection

logger = logging.getLogger(__name__)

TRUNCATED_NOTE = "\n[output truncated at {limit} bytes]"
PUSH_SCAN_MARGIN = 0.5  # seconds
# what running a command reads: its connection, with the device (its address) and the credentials
COMMAND_RELATED = ("device", "connection__device", "connection__credentials")


class NoUsableConnection(Conflict):
    default_message = "The device has no enabled, working connection"


# --- credentials --------------------------------------------------------------------------------------------


@transaction.atomic
def create_credentials(**fields):
    """Create credentials; with `auto_add` they are attached to every device they apply to."""
    credentials = Credentials(**fields)
    credentials.validated_save()
    if credentials.auto_add:
        attach_credentials(credentials=credentials)
    return credentials


@transaction.atomic
def update_credentials(*, credentials, **fields):
    for name, value in fields.items():
        setattr(credentials, name, value)
    credentials.validated_save()
    if credentials.auto_add:
        attach_credentials(credentials=credentials)
    return credentials


def attach_credentials(*, credentials):
    """Give every device of the credentials' organization (of every organization when shared) a connection."""
    devices = Device.objects.all()
    if credentials.organization_id is not None:
        devices = devices.filter(organization_id=credentials.organization_id)
    missing = devices.exclude(connections__credentials=credentials).values_list("pk", flat=True)
    DeviceConnection.objects.bulk_create(
        [DeviceConnection(device_id=pk, credentials=credentials) for pk in missing.iterator()],
        batch_size=1000,
        ignore_conflicts=True,
    )


def attach_auto_credentials(*, device):
    """Connect a new device with every `auto_add` credentials of its organization and the shared ones. Runs in
    every device creation, which holds SQLite's write lock: the ids are read by a written-out statement (the
    ORM's compilation of it cost more than the rest of the call) and no credentials are loaded (or decrypted)."""
    sql = (
        f"SELECT id FROM {table(Credentials)} WHERE auto_add "  # noqa: S608 - no user text
        "AND (organization_id = %s OR organization_id IS NULL)"
    )
    with database.cursor() as cursor:
        cursor.execute(sql, [uuid_param(device.organization_id)])
        applicable = [row[0] for row in cursor.fetchall()]
    if applicable:
        DeviceConnection.objects.bulk_create(
            [DeviceConnection(device=device, credentials_id=as_uuid(pk)) for pk in applicable], ignore_conflicts=True
        )


# --- device connections -------------------------------------------------------------------------------------


def create_connection(*, device, **fields):
    connection = DeviceConnection(device=device, **fields)
    connection.validated_save()
    return connection


def update_connection(*, connection, **fields):
    """Update a connection; new credentials make its state unknown again (it is tried on next use)."""
    if "credentials" in fields and fields["credentials"].pk != connection.credentials_id:
        connection.is_working, connection.failure_reason = None, ""
    for name, value in fields.items():
        setattr(connection, name, value)
    connection.validated_save()
    return connection


def connection_target(connection):
    """What a connector needs to reach the device of `connection` (address, login, trusted host key)."""
    device = connection.device
    host = device.management_ip or device.last_ip
    if not host:
        raise ConnectionFailed("The device has no management or last IP address to connect to")
    credentials = connection.credentials
    return get_connector(credentials.connector).target(credentials, host=host, host_key=connection.host_key)


def record_connection_success(connection, host_key=""):
    """The device answered: the connection works, and its host key is trusted from now on if it was new."""
    updates = {"is_working": True, "failure_reason": "", "last_attempt": timezone.now()}
    if host_key and not connection.host_key:
        updates["host_key"] = host_key
    DeviceConnection.objects.filter(pk=connection.pk).update(**updates)
    for name, value in updates.items():
        setattr(connection, name, value)


def record_connection_failure(connection, reason):
    updates = {"is_working": False, "failure_reason": reason[:1024], "last_attempt": timezone.now()}
    DeviceConnection.objects.filter(pk=connection.pk).update(**updates)
    for name, value in updates.items():
        setattr(connection, name, value)


# --- commands -----------------------------------------------------------------------------------------------


def command_deadline(connection, now=None):
    """When an unfinished command is given up by the sweep: every retry's connect time and backoff, the run
    itself, and a grace period."""
    params = connection.credentials.params
    connect = params.get("connect_timeout", settings.NETFLEET_CONNECTIONS_CONNECT_TIMEOUT)
    run = params.get("exec_timeout", settings.NETFLEET_CONNECTIONS_EXEC_TIMEOUT)
    retries = settings.NETFLEET_CONNECTIONS_COMMAND_RETRIES
    backoff = sum(retry_delay(attempt) for attempt in range(retries))
    seconds = connect * (retries + 1) + backoff + run + settings.NETFLEET_CONNECTIONS_STALE_GRACE
    return (now or timezone.now()) + timedelta(seconds=seconds)


def retry_delay(attempt):
    return settings.NETFLEET_CONNECTIONS_RETRY_BACKOFF * 2**attempt


def run_command(*, device, type, input, requested_by, connection=None):  # noqa: A002 - the API's field name
    """Record a command and queue it (a worker runs the commands waiting, many at once). Raises
    NoUsableConnection when no connection can reach the device."""
    if connection is None:
        connection = device.connections.usable().select_related("credentials").first()
    if connection is None:
        raise NoUsableConnection()
    command_type = get_command_type(type)
    secret = {name: input[name] for name in command_type.secret_fields if name in input}
    command = Command(
        device=device,
        connection=connection,
        type=type,
        input={name: value for name, value in input.items() if name not in secret},
        secret_input=json.dumps(secret) if secret else "",
        requested_by=requested_by,
        deadline=command_deadline(connection),
    )
    # the device, connection and user were just read and the id is new: only the command's own rules are checked
    # (no existence or uniqueness queries on the path that fans a command out to a fleet)
    command.full_clean(exclude=("device", "connection", "requested_by"), validate_unique=False)
    command.save()
    from . import tasks

    transaction.on_commit(tasks.execute_waiting_commands.delay)
    return command


def command_to_run(command_id):
    """The command a task should execute, or None: gone, finished, or interrupted (a worker started it and
    stopped before it finished; commands are not idempotent, so it is failed rather than run twice)."""
    command = Command.objects.select_related(*COMMAND_RELATED).filter(pk=command_id).first()
    if command is None or command.is_finished:
        return None
    if command.started is not None:
        finish_command(command, status=CommandStatus.FAILED, reason="Interrupted: the worker running it stopped")
        return None
    return command


def finish_command(command, *, status, reason="", output=None, exit_code=None):
    updates = {"status": status, "failure_reason": reason[:1024], "finished": timezone.now(), "exit_code": exit_code}
    if output is not None:
        updates["output"] = output
    # only an unfinished command is finished: the sweep and a late worker never overwrite each other
    Command.objects.filter(pk=command.pk, status=CommandStatus.IN_PROGRESS).update(**updates)
    for name, value in updates.items():
        setattr(command, name, value)
    return command


class LoopThread:
    """Runs an asyncio batch in a thread of its own while the calling thread, which keeps the ORM and its
    database connection (and transaction), stores what the batch reports as it goes: `report(item)` from the
    loop, `handle(item)` here. The loop never waits for the database."""

    _DONE = object()
    GROUP = 20

    def __init__(self):
        self.items = queue.SimpleQueue()

    def report(self, item):
        self.items.put(item)

    def run(self, coroutine_function, handle):
        failures = []

        def loop():
            try:
                asyncio.run(coroutine_function())
            except BaseException as exc:  # re-raised in the calling thread
                failures.append(exc)
            finally:
                self.items.put(self._DONE)

        thread = threading.Thread(target=loop, name="connections-loop", daemon=True)
        thread.start()
        done = False
        while not done:
            # what arrived meanwhile is stored in one transaction: one commit (one SQLite write lock) for several,
            # and few enough that other writers (new commands) do not wait long for the lock
            items = [self.items.get()]
            while len(items) < self.GROUP and not self.items.empty():
                items.append(self.items.get())
            if items[-1] is self._DONE:
                done = True
                items.pop()
            self._handle(items, handle, failures)
        thread.join()
        if failures:
            raise failures[0]

    @staticmethod
    def _handle(items, handle, failures):
        groups = [items]
        while groups:
            group = groups.pop()
            try:
                with transaction.atomic():
                    for item in group:
                        handle(item)
            except Exception as exc:  # store the others one by one: the batch's other results still count
                if len(group) > 1:
                    groups.extend([item] for item in group)
                else:
                    logger.exception("storing a result of a batch failed")
                    failures.append(exc)


class OutputWriter:
    """Streams a running command's output into its row, at most once per NETFLEET_CONNECTIONS_OUTPUT_FLUSH_SECONDS
    and not before it ran that long: a quick command's output is written once, when it finishes. The loop only
    reports the text; the thread that owns the database writes it (`write`)."""

    def __init__(self, command_id, loop_thread):
        self.command_id = command_id
        self.loop_thread = loop_thread
        self.last = time.monotonic()

    def start(self):
        """The command starts running now (connecting to the device took what it took)."""
        self.last = time.monotonic()

    async def __call__(self, text):
        now = time.monotonic()
        if now - self.last < settings.NETFLEET_CONNECTIONS_OUTPUT_FLUSH_SECONDS:
            return
        self.last = now
        self.loop_thread.report(("output", self.command_id, text))

    @staticmethod
    def write(command_id, text):
        Command.objects.filter(pk=command_id, status=CommandStatus.IN_PROGRESS).update(output=text)


@dataclass
class CommandRun:
    """What running one command needs, read from the database before the event loop starts."""

    command: Command
    connector: object
    target: object
    shell: str
    stdin: str | None
    outcome: object = None


def _prepare_run(command):
    """The CommandRun of `command`, or None when it cannot run: it is then failed with the reason."""
    connection = command.connection
    if connection is None or not connection.enabled:
        finish_command(command, status=CommandStatus.FAILED, reason="The connection was removed or disabled")
        return None
    shell, stdin = get_command_type(command.type).build({**command.input, **json.loads(command.secret_input or "{}")})
    try:
        target = connection_target(connection)
    except ConnectionFailed as exc:
        record_connection_failure(connection, exc.reason)
        finish_command(command, status=CommandStatus.FAILED, reason=exc.reason)
        return None
    return CommandRun(command, get_connector(connection.credentials.connector), target, shell, stdin)


async def _run_command(run, on_output):
    """(host key, ExecResult), or the ConnectionFailed that stopped it."""
    try:
        async with run.connector.session(run.target) as session:
            on_output.start()
            result = await session.run(run.shell, stdin=run.stdin, on_output=on_output)
            return session.host_key, result
    except ConnectionFailed as exc:
        return exc


def _record_outcome(run, outcome, *, retry_allowed):
    """Store how a command went on it and on its connection. Returns True when the device was unreachable and
    the command was left in progress for a retry (`retry_allowed`); otherwise it is finished."""
    command, connection = run.command, run.command.connection
    if isinstance(outcome, ConnectionFailed):
        record_connection_failure(connection, outcome.reason)
        if outcome.transient and retry_allowed:
            reason = f"Retrying: {outcome.reason}"[:1024]
            Command.objects.filter(pk=command.pk).update(started=None, failure_reason=reason)
            return True
        finish_command(command, status=CommandStatus.FAILED, reason=outcome.reason)
        return False
    host_key, result = outcome
    record_connection_success(connection, host_key)
    output = result.output
    if result.truncated:
        output += TRUNCATED_NOTE.format(limit=settings.NETFLEET_CONNECTIONS_OUTPUT_LIMIT)
    if result.timed_out:
        reason = f"Timed out after {run.target.exec_timeout} s; the command was stopped"
        finish_command(command, status=CommandStatus.FAILED, reason=reason, output=output)
    elif result.exit_code == 0:
        finish_command(command, status=CommandStatus.SUCCESS, output=output, exit_code=0)
    else:
        reason = f"Exited with code {result.exit_code}" if result.exit_code is not None else "Killed by a signal"
        finish_command(command, status=CommandStatus.FAILED, reason=reason, output=output, exit_code=result.exit_code)
    return False


def _run_commands(runs, record):
    """Run commands concurrently (bounded) in a loop thread; `record(run, outcome)` stores each outcome, in this
    thread, as soon as it is known."""
    loop_thread = LoopThread()

    async def one(run):
        try:
            outcome = await _run_command(run, OutputWriter(run.command.pk, loop_thread))
        except Exception as exc:  # a bug: the command is failed, the rest of the batch goes on
            logger.exception("command %s failed", run.command.pk)
            outcome = exc
        loop_thread.report(("outcome", run, outcome))

    errors = []

    def handle(item):
        if item[0] == "output":
            OutputWriter.write(item[1], item[2])
            return
        _, run, outcome = item
        if isinstance(outcome, Exception) and not isinstance(outcome, ConnectionFailed):
            finish_command(run.command, status=CommandStatus.FAILED, reason=f"Internal error: {outcome!r}")
            errors.append(outcome)
        else:
            record(run, outcome)

    loop_thread.run(lambda: _bounded(runs, one), handle)
    if errors:
        raise errors[0]


def execute_command(*, command, retry_allowed=False):
    """Run one command over its connection and store the outcome on it and on the connection (the retries of
    `execute_waiting_commands`, and tests).

    When the device cannot be reached and `retry_allowed`, DeviceUnreachable is raised with the command still
    in progress (the task retries it later); otherwise the command fails with the reason."""
    started = timezone.now()
    Command.objects.filter(pk=command.pk).update(started=started)
    command.started = started
    run = _prepare_run(command)
    if run is None:
        return command
    unreachable = []

    def record(run, outcome):
        if _record_outcome(run, outcome, retry_allowed=retry_allowed):
            unreachable.append(outcome)

    _run_commands([run], record)
    if unreachable:
        raise unreachable[0]
    return command


def _claim_waiting_commands(limit):
    """Up to `limit` commands waiting for a worker, oldest first, marked started so no other worker takes them.
    Waiting: queued by `run_command` and never attempted (one waiting for a retry belongs to its retry task)."""
    waiting = Command.objects.filter(status=CommandStatus.IN_PROGRESS, started__isnull=True, failure_reason="")
    # every new command queues a task and the first one takes all that wait: the others only read, and take no
    # write lock (SQLite) for nothing
    if not waiting.exists():
        return []
    with transaction.atomic():
        ids = list(waiting.select_for_update(skip_locked=True).order_by("created").values_list("pk", flat=True)[:limit])
        Command.objects.filter(pk__in=ids).update(started=timezone.now())
    return list(Command.objects.filter(pk__in=ids).select_related(*COMMAND_RELATED).order_by("created"))


def execute_waiting_commands(*, limit=None):
    """Run the commands waiting for a worker, concurrently: one task serves as many devices as are waiting (up
    to NETFLEET_CONNECTIONS_SSH_CONCURRENCY; a concurrent worker claims the next ones) in one event loop, and
    each outcome is stored as soon as it is known. A command whose device is unreachable is handed to its own
    `execute_command` task, which retries it with backoff. Returns the commands claimed."""
    from . import tasks

    commands = _claim_waiting_commands(limit or settings.NETFLEET_CONNECTIONS_SSH_CONCURRENCY)
    runs = [run for run in map(_prepare_run, commands) if run is not None]
    retry_allowed = settings.NETFLEET_CONNECTIONS_COMMAND_RETRIES > 0

    def record(run, outcome):
        if _record_outcome(run, outcome, retry_allowed=retry_allowed):
            delay = retry_delay(0)
            transaction.on_commit(
                lambda: tasks.execute_command.apply_async((str(run.command.pk),), countdown=delay, retries=1)
            )

    if runs:
        _run_commands(runs, record)
    return commands


def fail_stale_commands(*, now=None):
    """Fail commands still in progress past their deadline (a worker died, or the queue lost them).
    Returns how many were failed."""
    now = now or timezone.now()
    reason = "No result before the deadline: the worker running it stopped or the task was lost"
    return Command.objects.filter(status=CommandStatus.IN_PROGRESS, deadline__lt=now).update(
        status=CommandStatus.FAILED, failure_reason=reason, finished=now
    )


# --- configuration push -------------------------------------------------------------------------------------


def _push_candidates():
    """Connections through which configuration is pushed: the best usable one (with an update strategy) of
    each active device, as (pk, device_id, config checksum, push_checksum, push_due) rows."""
    return (
        DeviceConnection.objects.usable()
        .exclude(update_strategy="")
        .filter(device__is_deactivated=False)
        .values_list("pk", "device_id", "device__config__checksum", "push_checksum", "push_due")
    )


def _first_per_device(rows):
    seen = set()
    for row in rows:
        if row[1] not in seen:  # the best usable connection of a device comes first
            seen.add(row[1])
            yield row


def arm_config_pushes(*, config_ids, now=None):
    """Configs just became `modified` (the controller's CONFIGS_MODIFIED hook, in the changing transaction): arm
    the debounced push of each of their devices that has a usable connection, and once committed queue the
    scan of these connections for when the debounce period ends, so the push does not wait for the periodic
    scan. A later edit re-arms the push and queues its own scan, which makes the earlier one find nothing due:
    many edits in a few seconds still push once. One query when no device has a connection. Returns the ids of
    the connections armed."""
    now = now or timezone.now()
    debounce = settings.NETFLEET_CONNECTIONS_PUSH_DEBOUNCE
    due_at = now + timedelta(seconds=debounce)
    rows = _push_candidates().filter(device__config__pk__in=config_ids)
    armed = [
        DeviceConnection(pk=pk, push_checksum=checksum, push_due=due_at)
        for pk, _device_id, checksum, _push_checksum, _push_due in _first_per_device(rows)
    ]
    if not armed:
        return []
    DeviceConnection.objects.bulk_update(armed, ["push_checksum", "push_due"], batch_size=1000)
    from . import tasks

    ids = [str(connection.pk) for connection in armed]
    # a little after the due time: a scan that runs early finds nothing due and leaves it to the periodic one.
    # robust: the change is committed whatever the broker says, and the periodic scan pushes it anyway
    countdown = debounce + PUSH_SCAN_MARGIN if debounce else 0
    transaction.on_commit(lambda: tasks.schedule_config_pushes.apply_async((ids,), countdown=countdown), robust=True)
    return [connection.pk for connection in armed]


def schedule_config_pushes(*, now=None, connection_ids=None):
    """The scan behind debounced pushes: periodic over every device (the backstop, e.g. for a connection that
    became usable after its config changed), and queued by `arm_config_pushes` for the connections it armed
    (`connection_ids`). A device whose config is `modified` and that has a usable connection with an update
    strategy is pushed once its checksum has stayed the same for the debounce period (many edits in a few
    seconds: one push). Devices whose connections failed are skipped. Due pushes are claimed (a concurrent
    scan cannot push them again) and queued in chunks; returns the ids of the connections queued."""
    now = now or timezone.now()
    due_at = now + timedelta(seconds=settings.NETFLEET_CONNECTIONS_PUSH_DEBOUNCE)
    candidates = _push_candidates().filter(device__config__status=ConfigStatus.MODIFIED)
    if connection_ids is not None:
        candidates = candidates.filter(pk__in=connection_ids)
    armed, due = [], []
    for pk, _device_id, checksum, push_checksum, push_due in _first_per_device(candidates):
        if push_checksum != checksum:
            armed.append(DeviceConnection(pk=pk, push_checksum=checksum, push_due=due_at))
            if due_at <= now:
                due.append(pk)
        elif push_due is not None and push_due <= now:
            due.append(pk)
    if not armed and not due:
        return []
    with transaction.atomic():
        DeviceConnection.objects.bulk_update(armed, ["push_checksum", "push_due"], batch_size=1000)
        # claimed: pushed once, even when the periodic scan and a queued one run at the same time (a row locked
        # by the other is skipped; once it committed, its push_due is empty)
        due = list(
            DeviceConnection.objects.select_for_update(skip_locked=True)
            .filter(pk__in=due, push_due__lte=now)
            .values_list("pk", flat=True)
        )
        DeviceConnection.objects.filter(pk__in=due).update(push_due=None)
    from . import tasks

    chunk = settings.NETFLEET_CONNECTIONS_PUSH_CHUNK
    for start in range(0, len(due), chunk):
        batch = [str(pk) for pk in due[start : start + chunk]]
        transaction.on_commit(lambda batch=batch: tasks.push_configs.delay(batch))
    return due


@dataclass
class DeviceJob:
    """One device's part of a batch run with bounded concurrency: its connection, where to reach it, the outcome
    (a result, or the ConnectionFailed raised), and for a push the archive sent and its checksum."""

    connection: DeviceConnection
    target: object = None
    archive: bytes = b""
    checksum: str = ""
    outcome: object = None


def _openwrt_script():
    pid_file = shlex.quote(settings.NETFLEET_CONNECTIONS_OPENWRT_PID_FILE)
    restart = settings.NETFLEET_CONNECTIONS_OPENWRT_RESTART_COMMAND
    # USR1 makes openwisp-config poll now; an agent too old to handle it (no pid file) is restarted instead
    return (
        f'pid=$(cat {pid_file} 2>/dev/null); [ -n "$pid" ] || pid=$(pgrep -f openwisp_config 2>/dev/null | head -n 1); '
        f'if [ -n "$pid" ] && kill -USR1 "$pid" 2>/dev/null; then echo "openwisp-config ($pid) signalled"; '
        f'else {restart} && echo "openwisp-config restarted"; fi'
    )


def _linux_script(directory):
    apply = settings.NETFLEET_CONNECTIONS_LINUX_APPLY_COMMAND or "true"
    return (
        f"set -e; cd {directory}; rm -rf current.new; mkdir current.new; "
        "tar -xzf configuration.tar.gz -C current.new; rm -rf current; mv current.new current; "
        f"cd current; {apply}"
    )


async def _push_one(connector, job, strategy):
    async with connector.session(job.target) as session:
        if strategy == UpdateStrategy.LINUX_SSH:
            directory = shlex.quote(settings.NETFLEET_CONNECTIONS_LINUX_CONFIG_DIR)
            await session.run(f"mkdir -p {directory}")
            await session.upload(job.archive, f"{settings.NETFLEET_CONNECTIONS_LINUX_CONFIG_DIR}/configuration.tar.gz")
            result = await session.run(_linux_script(directory))
        else:
            result = await session.run(_openwrt_script())
        return session.host_key, result


async def _bounded(jobs, run):
    """Run `run(job)` for every job, at most NETFLEET_CONNECTIONS_SSH_CONCURRENCY at once; a job's connection
    failure is its outcome, not the batch's."""
    semaphore = asyncio.Semaphore(settings.NETFLEET_CONNECTIONS_SSH_CONCURRENCY)

    async def one(job):
        async with semaphore:
            try:
                job.outcome = await run(job)
            except ConnectionFailed as exc:
                job.outcome = exc

    await asyncio.gather(*(one(job) for job in jobs))


def _connection_jobs(connection_ids):
    """A job with its target for each of these connections that is enabled; one whose target cannot be built
    (e.g. no address) is recorded as failed and left out."""
    connections = DeviceConnection.objects.filter(pk__in=connection_ids, enabled=True).select_related(
        "device", "credentials"
    )
    jobs = []
    for connection in connections:
        job = DeviceJob(connection)
        try:
            job.target = connection_target(connection)
        except ConnectionFailed as exc:
            record_connection_failure(connection, exc.reason)
            continue
        jobs.append(job)
    return jobs


def push_configs(*, connection_ids):
    """Tell devices to apply their configuration, concurrently (bounded). OpenWrt: signal the agent, which then
    pulls and reports. Linux: upload, unpack and apply the archive, then set `applied`/`error` from the outcome.
    Returns the jobs with their outcomes."""
    jobs = _connection_jobs(connection_ids)
    for job in jobs:
        if job.connection.update_strategy == UpdateStrategy.LINUX_SSH:
            job.archive = controller_services.render_device_archive(device=job.connection.device)
            job.checksum = hashlib.md5(job.archive, usedforsecurity=False).hexdigest()
    if not jobs:
        return []

    async def run(job):
        connector = get_connector(job.connection.credentials.connector)
        return await _push_one(connector, job, job.connection.update_strategy)

    asyncio.run(_bounded(jobs, run))
    for job in jobs:
        _record_push(job)
    return jobs


def _record_push(job):
    connection = job.connection
    if isinstance(job.outcome, ConnectionFailed):
        record_connection_failure(connection, job.outcome.reason)
        return
    host_key, result = job.outcome
    record_connection_success(connection, host_key)
    succeeded = result.exit_code == 0
    if connection.update_strategy == UpdateStrategy.LINUX_SSH:
        # the device runs what was rendered then: a config changed meanwhile stays `modified`
        configs = Config.objects.filter(device_id=connection.device_id, checksum=job.checksum)
        if succeeded:
            configs.update(status=ConfigStatus.APPLIED, error_reason="")
        else:
            reason = result.output.strip()[-900:] or "no output"
            configs.update(status=ConfigStatus.ERROR, error_reason=f"Apply failed ({result.exit_code}): {reason}")
    elif not succeeded:
        reason = f"Could not signal the configuration agent: {result.output.strip()[-900:]}"
        DeviceConnection.objects.filter(pk=connection.pk).update(failure_reason=reason)


# --- re-test of connections ---------------------------------------------------------------------------------


def retest_connections(*, now=None):
    """Periodic: queue a test of every enabled connection that failed, or was never tried, and was not attempted
    within NETFLEET_CONNECTIONS_RETEST_INTERVAL, so a device that came back (or whose credentials were fixed)
    becomes usable again without an operator. Devices without an address are left alone (nothing to test).
    Connections are claimed (their `last_attempt` set now, so the next run does not queue them again) and
    queued in chunks; returns the ids queued."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.NETFLEET_CONNECTIONS_RETEST_INTERVAL)
    candidates = (
        DeviceConnection.objects.filter(enabled=True, device__is_deactivated=False)
        .exclude(is_working=True)
        .filter(Q(last_attempt__isnull=True) | Q(last_attempt__lt=stale))
        .filter(Q(device__management_ip__isnull=False) | Q(device__last_ip__isnull=False))
        .order_by("last_attempt", "created")
    )
    from . import tasks

    chunk, queued = settings.NETFLEET_CONNECTIONS_PUSH_CHUNK, []
    while True:
        with transaction.atomic():
            batch = list(
                candidates.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True)[:chunk]
            )
            DeviceConnection.objects.filter(pk__in=batch).update(last_attempt=now)
            ids = [str(pk) for pk in batch]
            if ids:
                transaction.on_commit(lambda ids=ids: tasks.check_connections.delay(ids))
        queued.extend(batch)
        if len(batch) < chunk:
            return queued


def check_connections(*, connection_ids):
    """Log in to each device and run a no-op there, concurrently (bounded), and record on each connection
    whether it works (`is_working`, `failure_reason`, `last_attempt`; a new host key is trusted on first use).
    Returns the jobs with their outcomes (the host key presented, or the ConnectionFailed)."""
    jobs = _connection_jobs(connection_ids)
    if not jobs:
        return []

    async def run(job):
        return await get_connector(job.connection.credentials.connector).probe(job.target)

    asyncio.run(_bounded(jobs, run))
    for job in jobs:
        if isinstance(job.outcome, ConnectionFailed):
            record_connection_failure(job.connection, job.outcome.reason)
        else:
            record_connection_success(job.connection, job.outcome)
    return jobs
