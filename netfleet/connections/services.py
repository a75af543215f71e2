"""Connections services: credentials, device connections, commands and configuration pushes.

Device work runs in Celery tasks and never in a request. The SSH part of it is asyncio (one event loop per task,
a semaphore bounding how many devices it talks to at once); the database is read before and written after, in
sync code, so connectors never touch the ORM.
"""

import asyncio
import hashlib
import json
import logging
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connections as db_connections
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from netfleet.controller import services as controller_services
from netfleet.controller.choices import ConfigStatus
from netfleet.controller.models import Config, Device
from netfleet.core.exceptions import Conflict

from .choices import CommandStatus, UpdateStrategy
from .commands import get_command_type
from .connectors import ConnectionFailed, DeviceUnreachable, get_connector
from .models import Command, Credentials, DeviceConnection

logger = logging.getLogger(__name__)

TRUNCATED_NOTE = "\n[output truncated at {limit} bytes]"


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
    """Connect a new device with every `auto_add` credentials of its organization and the shared ones."""
    applicable = Credentials.objects.filter(auto_add=True).filter(
        Q(organization_id=device.organization_id) | Q(organization__isnull=True)
    )
    DeviceConnection.objects.bulk_create(
        [DeviceConnection(device=device, credentials=credentials) for credentials in applicable],
        ignore_conflicts=True,
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
    """Record a command and queue it. Raises NoUsableConnection when no connection can reach the device."""
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
    command.validated_save()
    from . import tasks

    transaction.on_commit(lambda: tasks.execute_command.delay(str(command.pk)))
    return command


def command_to_run(command_id):
    """The command a task should execute, or None: gone, finished, or interrupted (a worker started it and
    stopped before it finished; commands are not idempotent, so it is failed rather than run twice)."""
    command = Command.objects.select_related("device", "connection__credentials").filter(pk=command_id).first()
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


class OutputWriter:
    """Streams a running command's output into its row, at most once per interval. The ORM is sync, so writes
    go through a thread of their own while the event loop runs."""

    def __init__(self, command_id):
        self.command_id = command_id
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="command-output")
        self.last = 0.0

    def _write(self, text):
        Command.objects.filter(pk=self.command_id, status=CommandStatus.IN_PROGRESS).update(output=text)

    async def __call__(self, text):
        now = time.monotonic()
        if now - self.last < settings.NETFLEET_CONNECTIONS_OUTPUT_FLUSH_SECONDS:
            return
        self.last = now
        await asyncio.get_running_loop().run_in_executor(self.executor, self._write, text)

    def close(self):
        self.executor.submit(db_connections.close_all).result()
        self.executor.shutdown()


async def _execute(connector, target, shell, stdin, on_output):
    async with connector.session(target) as session:
        result = await session.run(shell, stdin=stdin, on_output=on_output)
        return session.host_key, result


def execute_command(*, command, retry_allowed=False):
    """Run a command over its connection and store the outcome on it and on the connection.

    When the device cannot be reached and `retry_allowed`, DeviceUnreachable is raised with the command still
    in progress (the task retries it later); otherwise the command fails with the reason."""
    connection = command.connection
    if connection is None or not connection.enabled:
        return finish_command(command, status=CommandStatus.FAILED, reason="The connection was removed or disabled")
    started = timezone.now()
    Command.objects.filter(pk=command.pk).update(started=started)
    command.started = started
    command_type = get_command_type(command.type)
    shell, stdin = command_type.build({**command.input, **json.loads(command.secret_input or "{}")})
    writer = OutputWriter(command.pk)
    try:
        target = connection_target(connection)
        connector = get_connector(connection.credentials.connector)
        host_key, result = asyncio.run(_execute(connector, target, shell, stdin, writer))
    except DeviceUnreachable as exc:
        record_connection_failure(connection, exc.reason)
        if retry_allowed:
            Command.objects.filter(pk=command.pk).update(started=None, failure_reason=f"Retrying: {exc.reason}")
            raise
        return finish_command(command, status=CommandStatus.FAILED, reason=exc.reason)
    except ConnectionFailed as exc:
        record_connection_failure(connection, exc.reason)
        return finish_command(command, status=CommandStatus.FAILED, reason=exc.reason)
    finally:
        writer.close()
    record_connection_success(connection, host_key)
    output = result.output
    if result.truncated:
        output += TRUNCATED_NOTE.format(limit=settings.NETFLEET_CONNECTIONS_OUTPUT_LIMIT)
    if result.timed_out:
        reason = f"Timed out after {target.exec_timeout} s; the command was stopped"
        return finish_command(command, status=CommandStatus.FAILED, reason=reason, output=output)
    if result.exit_code == 0:
        return finish_command(command, status=CommandStatus.SUCCESS, output=output, exit_code=0)
    reason = f"Exited with code {result.exit_code}" if result.exit_code is not None else "Killed by a signal"
    return finish_command(
        command, status=CommandStatus.FAILED, reason=reason, output=output, exit_code=result.exit_code
    )


def fail_stale_commands(*, now=None):
    """Fail commands still in progress past their deadline (a worker died, or the queue lost them).
    Returns how many were failed."""
    now = now or timezone.now()
    reason = "No result before the deadline: the worker running it stopped or the task was lost"
    return Command.objects.filter(status=CommandStatus.IN_PROGRESS, deadline__lt=now).update(
        status=CommandStatus.FAILED, failure_reason=reason, finished=now
    )


# --- configuration push -------------------------------------------------------------------------------------


def schedule_config_pushes(*, now=None):
    """The periodic scan behind debounced pushes. A device whose config is `modified` and that has a usable
    connection with an update strategy is pushed once its checksum has stayed the same for the debounce
    period (many edits in a few seconds: one push). Devices whose connections failed are skipped. Due pushes
    are queued in chunks; returns the ids of the connections queued."""
    now = now or timezone.now()
    due_at = now + timedelta(seconds=settings.NETFLEET_CONNECTIONS_PUSH_DEBOUNCE)
    candidates = (
        DeviceConnection.objects.usable()
        .exclude(update_strategy="")
        .filter(device__config__status=ConfigStatus.MODIFIED, device__is_deactivated=False)
        .values_list("pk", "device_id", "device__config__checksum", "push_checksum", "push_due")
    )
    seen, armed, due = set(), [], []
    for pk, device_id, checksum, push_checksum, push_due in candidates:
        if device_id in seen:  # one connection per device: the best usable one comes first
            continue
        seen.add(device_id)
        if push_checksum != checksum:
            armed.append(DeviceConnection(pk=pk, push_checksum=checksum, push_due=due_at))
            if due_at <= now:
                due.append(pk)
        elif push_due is not None and push_due <= now:
            due.append(pk)
    DeviceConnection.objects.bulk_update(armed, ["push_checksum", "push_due"], batch_size=1000)
    DeviceConnection.objects.filter(pk__in=due).update(push_due=None)  # claimed: pushed once
    from . import tasks

    chunk = settings.NETFLEET_CONNECTIONS_PUSH_CHUNK
    for start in range(0, len(due), chunk):
        batch = [str(pk) for pk in due[start : start + chunk]]
        transaction.on_commit(lambda batch=batch: tasks.push_configs.delay(batch))
    return due


@dataclass
class PushJob:
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


def push_configs(*, connection_ids):
    """Tell devices to apply their configuration, concurrently (bounded). OpenWrt: signal the agent, which then
    pulls and reports. Linux: upload, unpack and apply the archive, then set `applied`/`error` from the outcome.
    Returns the jobs with their outcomes."""
    connections = DeviceConnection.objects.filter(pk__in=connection_ids, enabled=True).select_related(
        "device", "credentials"
    )
    jobs = []
    for connection in connections:
        job = PushJob(connection)
        try:
            job.target = connection_target(connection)
        except ConnectionFailed as exc:
            record_connection_failure(connection, exc.reason)
            continue
        if connection.update_strategy == UpdateStrategy.LINUX_SSH:
            job.archive = controller_services.render_device_archive(device=connection.device)
            job.checksum = hashlib.md5(job.archive, usedforsecurity=False).hexdigest()
        jobs.append(job)
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
