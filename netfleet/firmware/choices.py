from django.db import models


class UpgradeStatus(models.TextChoices):
    IN_PROGRESS = "in-progress", "in progress"
    SUCCESS = "success", "success"
    FAILED = "failed", "failed"
    ABORTED = "aborted", "aborted"
    CANCELLED = "cancelled", "cancelled"


class UpgradeStep(models.TextChoices):
    QUEUED = "queued", "queued"
    CONNECTING = "connecting", "connecting"
    CHECKING = "checking", "checking the device"
    UPLOADING = "uploading", "uploading the image"
    VERIFYING = "verifying", "verifying the upload"
    FLASHING = "flashing", "flashing"
    REBOOTING = "rebooting", "waiting for the reboot"
    CONFIRMING = "confirming", "confirming the new firmware"
    DONE = "done", "done"


class BatchStatus(models.TextChoices):
    IDLE = "idle", "idle"
    IN_PROGRESS = "in-progress", "in progress"
    SUCCESS = "success", "success"
    FAILED = "failed", "failed"


# an operation in one of these may be retried
RETRYABLE = (UpgradeStatus.FAILED, UpgradeStatus.CANCELLED, UpgradeStatus.ABORTED)
