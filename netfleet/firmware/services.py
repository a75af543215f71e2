"""Firmware services: images, device firmware, single and mass upgrades, cancel/retry and the stale sweep.

Upgrades run in Celery tasks on their own queue (NETFLEET_FIRMWARE_QUEUE), never in a request: a request records
UpgradeOperation rows and queues them in chunks; a chunk task upgrades its devices in threads, at most
NETFLEET_FIRMWARE_CONCURRENCY at once, each through the upgrader of its connection's update strategy.
"""

import hashlib
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections as db_connections
from django.db import transaction
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from netfleet.connections import services as connection_services
from netfleet.connections.connectors import ConnectionFailed, get_connector
from netfleet.connections.models import DeviceConnection
from netfleet.connections.services import NoUsableConnection
from netfleet.core.exceptions import Conflict
from netfleet.monitoring import services as monitoring_services
from netfleet.monitoring.models import MaintenanceWindow

from .choices import RETRYABLE, BatchStatus, UpgradeStatus, UpgradeStep
from .models import (
    UPGRADE_OPTION_DEFAULTS,
    BatchUpgradeOperation,
    DeviceFirmware,
    FirmwareImage,
    UpgradeOperation,
    incompatibility,
)
from .upgraders import UpgradeAborted, UpgradeCancelled, UpgradeFailed, get_upgrader

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"

__all__ = ["NoUsableConnection"]


class UpgradeInProgress(Conflict):
    default_message = "An upgrade of this device is already in progress"


class NothingToUpgrade(Conflict):
    default_message = "No device would be upgraded to this build (see the dry run)"


class NotCancellable(Conflict):
    default_message = "Only an upgrade in progress that has not started flashing can be cancelled"


class NotRetryable(Conflict):
    default_message = "Only a failed, aborted or cancelled upgrade can be retried"


class ImageInUse(Conflict):
    default_message = "The image is being flashed on devices; delete it once their upgrades have finished"


# --- images ---------------------------------------------------------------------------------------------------


class UploadLimit:
    """`max_body_size` of the image upload view (read by BodyLimitMiddleware), from the setting at call time."""

    def __get__(self, instance, owner):
        return settings.NETFLEET_FIRMWARE_MAX_IMAGE_BYTES + 64 * 1024


def check_image_file(upload, image_type):
    """Size and type check of an uploaded image: not empty, within NETFLEET_FIRMWARE_MAX_IMAGE_BYTES, and a
    gzip stream when its type is a `.gz` image. Returns its sha256, read in chunks (never the whole file)."""
    limit = settings.NETFLEET_FIRMWARE_MAX_IMAGE_BYTES
    if not upload.size:
        raise ValidationError({"file": ValidationError("The image file is empty.", code="empty")})
    if upload.size > limit:
        raise ValidationError({"file": ValidationError(f"The image is larger than {limit} bytes.", code="max_size")})
    upload.seek(0)
    head = upload.read(2)
    if image_type.endswith(".gz") and head != GZIP_MAGIC:
        message = f"A {image_type} image must be gzip-compressed; this file is not."
        raise ValidationError({"file": ValidationError(message, code="invalid_image")})
    upload.seek(0)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def create_image(*, build, file, type):  # noqa: A002 - the API's field name
    """Store an uploaded image of `build` with its size and sha256. The file is removed again if the row
    cannot be saved."""
    sha256 = check_image_file(file, type)
    image = FirmwareImage(build=build, type=type, file=file, size=file.size, sha256=sha256)
    image.full_clean(exclude=["file"])
    try:
        with transaction.atomic():
            image.save()
    except BaseException:
        if image.file.name and image.file._committed:
            image.file.storage.delete(image.file.name)
        raise
    return image


def delete_image(*, image):
    """Delete an image and, once committed, its file. Refused while it is being flashed somewhere."""
    if image.upgrade_operations.filter(status=UpgradeStatus.IN_PROGRESS).exists():
        raise ImageInUse()
    name, storage = image.file.name, image.file.storage
    image.delete()
    transaction.on_commit(lambda: storage.delete(name))


# --- device firmware ------------------------------------------------------------------------------------------


@transaction.atomic
def set_device_firmware(*, device, image, upgrade_options=None, requested_by=None):
    """Point `device` at `image`, creating its DeviceFirmware if missing. As in the reference system, a new or
    changed image starts an upgrade to it (the record is `installed` only once that upgrade succeeds); the same
    image again changes nothing. Returns (device_firmware, created, operation or None). Raises
    NoUsableConnection or UpgradeInProgress (409) when the upgrade cannot start, and nothing is saved."""
    device_firmware = DeviceFirmware.objects.select_for_update().filter(device=device).first()
    created = device_firmware is None
    if created:
        device_firmware = DeviceFirmware(device=device, image=image)
    changed = created or device_firmware.image_id != image.pk
    if changed:
        device_firmware.image, device_firmware.installed = image, False
        device_firmware.validated_save()
    operation = None
    if changed:
        operation = start_upgrade(
            device=device, image=image, upgrade_options=upgrade_options, requested_by=requested_by
        )
    return device_firmware, created, operation


# --- upgrades -------------------------------------------------------------------------------------------------


def operation_deadline(*, now=None, position=0):
    """When an unfinished operation is given up by the sweep: one upgrade's time for every round of the chunk
    queue ahead of it, plus a grace period."""
    rounds = 1 + position // max(1, settings.NETFLEET_FIRMWARE_CONCURRENCY)
    seconds = settings.NETFLEET_FIRMWARE_OPERATION_TIMEOUT * rounds + settings.NETFLEET_FIRMWARE_STALE_GRACE
    return (now or timezone.now()) + timedelta(seconds=seconds)


def options_with_defaults(options):
    return {**UPGRADE_OPTION_DEFAULTS, **(options or {})}


def start_upgrade(*, device, image, upgrade_options=None, requested_by=None, retry_of=None):
    """Record an upgrade of `device` to `image` and queue it on the firmware queue. Raises ValidationError (422)
    when the image does not fit the device, UpgradeInProgress when one is already running, NoUsableConnection
    when no connection can reach the device."""
    reason = incompatibility(device, image)
    if reason:
        raise ValidationError({"image": reason})
    if UpgradeOperation.objects.filter(device=device, status=UpgradeStatus.IN_PROGRESS).exists():
        raise UpgradeInProgress()
    connection = device.connections.usable().first()
    if connection is None:
        raise NoUsableConnection()
    operation = UpgradeOperation(
        device=device,
        image=image,
        connection=connection,
        upgrade_options=options_with_defaults(upgrade_options),
        requested_by=requested_by,
        retry_of=retry_of,
        deadline=operation_deadline(),
        log=f"Queued: upgrade to {image.build} ({image.type})\n",
    )
    operation.full_clean(validate_constraints=False)  # the in-progress constraint: the database settles races
    operation.save()
    transaction.on_commit(lambda: enqueue_upgrades([operation.pk]))
    return operation


def enqueue_upgrades(operation_ids):
    """Queue operations in chunks of NETFLEET_FIRMWARE_CHUNK on the firmware queue, with a time limit that fits
    a chunk's rounds of NETFLEET_FIRMWARE_CONCURRENCY upgrades."""
    from . import tasks

    chunk = max(1, settings.NETFLEET_FIRMWARE_CHUNK)
    for start in range(0, len(operation_ids), chunk):
        batch = [str(pk) for pk in operation_ids[start : start + chunk]]
        rounds = math.ceil(len(batch) / max(1, settings.NETFLEET_FIRMWARE_CONCURRENCY))
        limit = rounds * settings.NETFLEET_FIRMWARE_OPERATION_TIMEOUT + 60
        tasks.run_upgrades.apply_async(
            (batch,), queue=settings.NETFLEET_FIRMWARE_QUEUE, time_limit=limit + 30, soft_time_limit=limit
        )


def _append(line):
    return Concat(F("log"), Value(f"{line}\n"))


def finish_operation(operation, *, status, reason=""):
    """Finish an operation still in progress (the sweep, a cancel and a late worker never overwrite each other);
    `reason` is appended to its log. Returns whether it was this call that finished it."""
    now = timezone.now()
    updates = {"status": status, "finished": now}
    if status == UpgradeStatus.SUCCESS:
        updates.update(step=UpgradeStep.DONE, progress=100)
    if reason:
        updates["log"] = _append(reason)
    done = UpgradeOperation.objects.filter(pk=operation.pk, status=UpgradeStatus.IN_PROGRESS).update(**updates)
    operation.status, operation.finished = (status, now) if done else (operation.status, operation.finished)
    return bool(done)


class Recorder:
    """What a running upgrade writes: log lines (appended in the database, so nothing is overwritten), its step
    and progress, the cancel check, and the claim of the point of no return."""

    def __init__(self, operation):
        self.operation = operation
        self.step = UpgradeStep.QUEUED

    def log(self, line, *, step=None, progress=None):
        updates = {"log": _append(line)}
        if step is not None:
            self.step = updates["step"] = step
        if progress is not None:
            updates["progress"] = progress
        UpgradeOperation.objects.filter(pk=self.operation.pk).update(**updates)
        logger.info("upgrade %s: %s", self.operation.pk, line)

    def check_cancelled(self):
        status = UpgradeOperation.objects.filter(pk=self.operation.pk).values_list("status", flat=True).first()
        if status != UpgradeStatus.IN_PROGRESS:
            raise UpgradeCancelled("Cancelled by the operator")

    def claim_flashing(self):
        """Pass the point of no return, unless the operator cancelled first (then UpgradeCancelled)."""
        claimed = UpgradeOperation.objects.filter(
            pk=self.operation.pk, status=UpgradeStatus.IN_PROGRESS, flashing_started__isnull=True
        ).update(flashing_started=timezone.now(), step=UpgradeStep.FLASHING)
        if not claimed:
            raise UpgradeCancelled("Cancelled by the operator")
        self.step = UpgradeStep.FLASHING


def operation_to_run(operation_id):
    """The operation a task should run, claimed for this worker, or None: gone, finished, or interrupted (a
    worker started it and stopped; it may have flashed already, so it is failed rather than run twice)."""
    operation = (
        UpgradeOperation.objects.select_related(
            "device", "image__build__category", "connection__credentials", "connection__device", "batch"
        )
        .filter(pk=operation_id)
        .first()
    )
    if operation is None or operation.is_finished:
        return None
    now = timezone.now()
    deadline = now + timedelta(
        seconds=settings.NETFLEET_FIRMWARE_OPERATION_TIMEOUT + settings.NETFLEET_FIRMWARE_STALE_GRACE
    )
    claimed = UpgradeOperation.objects.filter(
        pk=operation.pk, status=UpgradeStatus.IN_PROGRESS, started__isnull=True
    ).update(started=now, deadline=deadline)
    if not claimed:
        finish_operation(operation, status=UpgradeStatus.FAILED, reason="Interrupted: the worker running it stopped")
        refresh_batch(operation.batch_id)
        return None
    operation.started, operation.deadline = now, deadline
    return operation


def _precondition(operation):
    """Why the operation cannot start (nothing was done to the device yet), or None."""
    if operation.image is None:
        return "The image was deleted"
    reason = incompatibility(operation.device, operation.image)
    if reason:
        return reason
    connection = operation.connection
    if connection is None or not connection.enabled:
        return "The device's connection was removed or disabled"
    if get_upgrader(connection.update_strategy) is None:
        strategy = connection.update_strategy or "none"
        return f"No upgrader for the connection's update strategy {strategy!r}"
    return None


def perform_upgrade(*, operation):
    """Run a claimed operation to its end and record the outcome: `success` (the DeviceFirmware is then the
    image, `installed`), `failed` with the step and reason in the log, `aborted` when a precondition stopped it
    before flashing, or left `cancelled` by the operator. A maintenance window silences the device's alerts
    while it runs."""
    recorder = Recorder(operation)
    window = None
    try:
        reason = _precondition(operation)
        if reason:
            raise UpgradeAborted(reason)
        connection = operation.connection
        minutes = settings.NETFLEET_FIRMWARE_MAINTENANCE_MINUTES
        window = monitoring_services.open_maintenance_window(
            device=operation.device, minutes=minutes, reason=f"firmware upgrade to {operation.image.build}"[:128]
        )
        try:
            target = connection_services.connection_target(connection)
        except ConnectionFailed as exc:
            raise UpgradeAborted(exc.reason) from None
        upgrader_class = get_upgrader(connection.update_strategy)
        upgrader = upgrader_class(
            operation=operation,
            recorder=recorder,
            connector=get_connector(connection.credentials.connector),
            target=target,
        )
        upgrader.upgrade()
    except UpgradeCancelled:
        recorder.log("Stopped: cancelled by the operator before flashing")
    except UpgradeAborted as exc:
        finish_operation(operation, status=UpgradeStatus.ABORTED, reason=f"Aborted while {_doing(recorder)}: {exc}")
    except (UpgradeFailed, ConnectionFailed) as exc:
        reason = exc.reason
        if isinstance(exc, ConnectionFailed):
            connection_services.record_connection_failure(operation.connection, reason)
        finish_operation(operation, status=UpgradeStatus.FAILED, reason=f"Failed while {_doing(recorder)}: {reason}")
    except Exception as exc:
        finish_operation(
            operation, status=UpgradeStatus.FAILED, reason=f"Failed while {_doing(recorder)}: internal error ({exc})"
        )
        raise
    else:
        _record_success(operation, upgrader)
    finally:
        flashed = UpgradeOperation.objects.filter(pk=operation.pk, flashing_started__isnull=False).exists()
        if window is not None and not flashed:  # nothing happened to the device: its alerts count again
            MaintenanceWindow.objects.filter(pk=window.pk).update(ends=max(timezone.now(), window.starts))
        refresh_batch(operation.batch_id)
    return operation


def _doing(recorder):
    return UpgradeStep(recorder.step).label


def _record_success(operation, upgrader):
    with transaction.atomic():
        if not finish_operation(operation, status=UpgradeStatus.SUCCESS, reason="Upgrade completed successfully"):
            return
        DeviceFirmware.objects.update_or_create(
            device=operation.device, defaults={"image": operation.image, "installed": True}
        )
    connection = operation.connection
    if not operation.upgrade_options.get("keep_config", True):
        DeviceConnection.objects.filter(pk=connection.pk).update(host_key="")
        connection.host_key = ""
    connection_services.record_connection_success(connection, upgrader.host_key)


def run_upgrades(*, operation_ids):
    """Run a chunk of operations, at most NETFLEET_FIRMWARE_CONCURRENCY at once (one thread each); one device's
    failure never stops the others."""
    concurrency = min(max(1, settings.NETFLEET_FIRMWARE_CONCURRENCY), len(operation_ids))
    if concurrency <= 1:
        for operation_id in operation_ids:
            _run(operation_id)
        return
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="firmware-upgrade") as pool:
        results = list(pool.map(_run_in_thread, operation_ids))
    errors = [result for result in results if isinstance(result, Exception)]
    if errors:
        raise errors[0]


def _run(operation_id):
    operation = operation_to_run(operation_id)
    if operation is not None:
        perform_upgrade(operation=operation)


def _run_in_thread(operation_id):
    try:
        _run(operation_id)
    except Exception as exc:  # recorded on the operation already; re-raised by the chunk once all are done
        logger.exception("upgrade %s failed with an internal error", operation_id)
        return exc
    finally:
        db_connections.close_all()
    return None


@transaction.atomic
def cancel_upgrade(*, operation):
    """Cancel an upgrade before it starts flashing (NotCancellable afterwards, or once finished)."""
    cancelled = UpgradeOperation.objects.filter(
        pk=operation.pk, status=UpgradeStatus.IN_PROGRESS, flashing_started__isnull=True
    ).update(status=UpgradeStatus.CANCELLED, finished=timezone.now(), log=_append("Cancelled by the operator"))
    if not cancelled:
        operation.refresh_from_db(fields=["status", "flashing_started"])
        if operation.status == UpgradeStatus.IN_PROGRESS:
            raise NotCancellable("The upgrade has started flashing the device and can no longer be cancelled")
        raise NotCancellable(f"The upgrade is already {operation.status}")
    refresh_batch(operation.batch_id)
    operation.refresh_from_db()
    return operation


def retry_upgrade(*, operation, requested_by=None):
    """A new upgrade with the same device, image and options as a failed, aborted or cancelled one."""
    if operation.status not in RETRYABLE:
        raise NotRetryable(f"The upgrade is {operation.status}; only a failed, aborted or cancelled one is retried")
    if operation.image is None:
        raise NotRetryable("The image of this upgrade was deleted")
    return start_upgrade(
        device=operation.device,
        image=operation.image,
        upgrade_options=operation.upgrade_options,
        requested_by=requested_by,
        retry_of=operation,
    )


def fail_stale_upgrades(*, now=None):
    """Fail operations still in progress past their deadline (a worker died, or the queue lost them), and bring
    their batches up to date. Returns how many were failed."""
    now = now or timezone.now()
    stale = UpgradeOperation.objects.filter(status=UpgradeStatus.IN_PROGRESS, deadline__lt=now)
    batch_ids = set(stale.exclude(batch=None).values_list("batch_id", flat=True))
    reason = "Failed: no result before the deadline (the worker running it stopped or the task was lost)"
    count = stale.update(status=UpgradeStatus.FAILED, finished=now, log=_append(reason))
    for batch_id in batch_ids:
        refresh_batch(batch_id)
    return count


# --- mass upgrades --------------------------------------------------------------------------------------------


@dataclass
class PlannedUpgrade:
    device: object
    image: FirmwareImage
    device_firmware: DeviceFirmware | None


def plan_batch_upgrade(*, build, devices, organization=None, group=None, location=None, upgrade_all=True):
    """What a mass upgrade to `build` would do, among `devices` (those the caller may upgrade): devices whose
    DeviceFirmware is of the build's category (unless already installed with this build), each getting the
    build's image of the same type (or another that fits it); with `upgrade_all`, also devices without a
    DeviceFirmware whose model fits one of the build's images. The dry run and the real run both use this."""
    images = list(build.images.select_related("build__category"))
    if not images:
        return []
    devices = devices.filter(is_deactivated=False)
    if build.category.organization_id is not None:
        devices = devices.filter(organization_id=build.category.organization_id)
    if organization is not None:
        devices = devices.filter(organization=organization)
    if group is not None:
        devices = devices.filter(group=group)
    if location is not None:
        devices = devices.filter(devicelocation__location=location)

    def image_for(device, preferred_type=None):
        ordered = sorted(images, key=lambda image: image.type != preferred_type)
        return next((image for image in ordered if incompatibility(device, image) is None), None)

    plan = []
    related = (
        DeviceFirmware.objects.filter(device__in=devices, image__build__category_id=build.category_id)
        .exclude(image__build=build, installed=True)
        .select_related("device", "image")
    )
    for device_firmware in related:
        image = image_for(device_firmware.device, device_firmware.image.type)
        if image is not None:
            plan.append(PlannedUpgrade(device_firmware.device, image, device_firmware))
    if upgrade_all:
        boards = {board for image in images if image.image_type for board in image.image_type.boards}
        models = Q(pk__in=[])
        for board in boards:
            models |= Q(model__iexact=board)
        for device in devices.filter(devicefirmware__isnull=True).filter(models):
            image = image_for(device)
            if image is not None:
                plan.append(PlannedUpgrade(device, image, None))
    plan.sort(key=lambda planned: (planned.device.name.lower(), str(planned.device.pk)))
    return plan


def dry_run(**selection):
    """The dry run's answer: the DeviceFirmware ids and, for devices without one, the Device ids."""
    plan = plan_batch_upgrade(**selection)
    return {
        "device_firmwares": [str(p.device_firmware.pk) for p in plan if p.device_firmware is not None],
        "devices": [str(p.device.pk) for p in plan if p.device_firmware is None],
    }


@transaction.atomic
def start_batch_upgrade(
    *,
    build,
    devices,
    organization=None,
    group=None,
    location=None,
    upgrade_all=True,
    upgrade_options=None,
    requested_by=None,
):
    """Start a mass upgrade: one UpgradeOperation per planned device, queued in chunks. A device that cannot
    start (no usable connection, an upgrade already running) gets an `aborted` operation saying why, and the
    others go on. Raises NothingToUpgrade (409) when the plan is empty."""
    plan = plan_batch_upgrade(
        build=build, devices=devices, organization=organization, group=group, location=location, upgrade_all=upgrade_all
    )
    if not plan:
        raise NothingToUpgrade()
    options = options_with_defaults(upgrade_options)
    batch = BatchUpgradeOperation(
        organization=organization or build.category.organization,
        build=build,
        group=group,
        location=location,
        upgrade_all=upgrade_all,
        upgrade_options=options,
        status=BatchStatus.IN_PROGRESS,
        requested_by=requested_by,
    )
    batch.validated_save()
    device_ids = [planned.device.pk for planned in plan]
    connections = {}
    for connection in DeviceConnection.objects.usable().filter(device_id__in=device_ids):
        connections.setdefault(connection.device_id, connection)
    busy = set(
        UpgradeOperation.objects.filter(device_id__in=device_ids, status=UpgradeStatus.IN_PROGRESS).values_list(
            "device_id", flat=True
        )
    )
    now = timezone.now()
    operations = []
    for position, planned in enumerate(plan):
        operation = UpgradeOperation(
            device=planned.device,
            image=planned.image,
            batch=batch,
            connection=connections.get(planned.device.pk),
            upgrade_options=options,
            requested_by=requested_by,
            deadline=operation_deadline(now=now, position=position),
            log=f"Queued: upgrade to {build} ({planned.image.type})\n",
        )
        if planned.device.pk in busy:
            operation.status, operation.finished = UpgradeStatus.ABORTED, now
            operation.log += "Aborted: another upgrade of this device is in progress\n"
        elif operation.connection is None:
            operation.status, operation.finished = UpgradeStatus.ABORTED, now
            operation.log += f"Aborted: {NoUsableConnection.default_message}\n"
        operations.append(operation)
    UpgradeOperation.objects.bulk_create(operations, batch_size=500)
    queued = [operation.pk for operation in operations if operation.status == UpgradeStatus.IN_PROGRESS]
    transaction.on_commit(lambda: enqueue_upgrades(queued))
    refresh_batch(batch.pk)
    batch.refresh_from_db()
    return batch


def aggregate_status(counts):
    """A batch's status from its operations' {status: count}: any in progress → in-progress, else any failed,
    aborted or cancelled → failed, else (all succeeded) success; no operation at all → idle."""
    if not counts:
        return BatchStatus.IDLE
    if counts.get(UpgradeStatus.IN_PROGRESS):
        return BatchStatus.IN_PROGRESS
    if any(counts.get(status) for status in (UpgradeStatus.FAILED, UpgradeStatus.ABORTED, UpgradeStatus.CANCELLED)):
        return BatchStatus.FAILED
    return BatchStatus.SUCCESS


def refresh_batch(batch_id):
    """Bring a batch's status in line with its operations. The batch row is locked while its operations are
    counted, so concurrent finishing operations cannot leave it with a stale status."""
    if batch_id is None:
        return None
    with transaction.atomic():
        batch = BatchUpgradeOperation.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None:
            return None
        counts = dict(batch.operations.values_list("status").annotate(count=Count("pk")).order_by())
        status = aggregate_status(counts)
        finished = None if status in (BatchStatus.IDLE, BatchStatus.IN_PROGRESS) else (batch.finished or timezone.now())
        if (status, finished) != (batch.status, batch.finished):
            BatchUpgradeOperation.objects.filter(pk=batch_id).update(status=status, finished=finished)
    return status


def batch_counts():
    """Annotations of a batch queryset with its operations per status (one query for a whole list)."""
    return {
        "operations_count": Count("operations"),
        "in_progress_count": Count("operations", filter=Q(operations__status=UpgradeStatus.IN_PROGRESS)),
        "success_count": Count("operations", filter=Q(operations__status=UpgradeStatus.SUCCESS)),
        "failed_count": Count("operations", filter=Q(operations__status=UpgradeStatus.FAILED)),
        "aborted_count": Count("operations", filter=Q(operations__status=UpgradeStatus.ABORTED)),
        "cancelled_count": Count("operations", filter=Q(operations__status=UpgradeStatus.CANCELLED)),
    }
