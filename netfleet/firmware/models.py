"""Firmware categories, builds and images, the firmware each device runs, and the upgrades that change it."""

import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from netfleet.connections.models import DeviceScopedModel
from netfleet.core.models import NetfleetModel, OrganizationScopedModel, ShareableModel, TenantManager

from .choices import BatchStatus, UpgradeStatus, UpgradeStep
from .hardware import get_image_type

UPGRADE_OPTION_DEFAULTS = {"keep_config": True, "force": False}


class Category(ShareableModel):
    """A line of firmware (e.g. "OpenWrt for outdoor APs"): its builds are successive versions of one firmware.
    Shared categories (no organization) are readable by everyone and managed by superusers."""

    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        related_name="firmware_categories",
        null=True,
        blank=True,
        help_text="Leave empty to share with every organization.",
    )
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ("name",)
        verbose_name_plural = "categories"
        constraints = [models.UniqueConstraint(fields=("organization", "name"), name="firmware_category_org_name")]

    def __str__(self):
        return self.name


class Build(NetfleetModel):
    """One version of a category's firmware, with its changelog and the OS identifier devices report once they
    run it (e.g. "OpenWrt 23.05.3 r23809-234f1a2efa"), which confirms an upgrade."""

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="builds")
    version = models.CharField(max_length=32)
    os = models.CharField(
        max_length=128,
        blank=True,
        help_text="OS identifier the device reports when it runs this build; confirms an upgrade",
    )
    changelog = models.TextField(blank=True)

    tenancy_organization_field = "category__organization"
    tenancy_site_field = None
    tenancy_shared = True
    objects = TenantManager()

    class Meta:
        ordering = ("-created",)
        constraints = [models.UniqueConstraint(fields=("category", "version"), name="firmware_build_category_version")]

    def __str__(self):
        return f"{self.category} {self.version}"

    @property
    def tenancy_organization_id(self):
        return self.category.organization_id

    @property
    def tenancy_site_id(self):
        return None


def firmware_upload_to(instance, filename):
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", filename.rsplit("/", 1)[-1])[-100:] or "image.bin"
    return f"firmware/{instance.build_id}/{uuid.uuid4().hex[:12]}-{name}"


class FirmwareImage(NetfleetModel):
    """A build's image file for one image type (board/target), stored under MEDIA_ROOT/firmware/ (never served
    publicly: downloads go through the API). `sha256` is computed at upload and checked on the device."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=firmware_upload_to, max_length=255)
    type = models.CharField(max_length=128, help_text="Image type: which board/target the image is for")
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)

    tenancy_organization_field = "build__category__organization"
    tenancy_site_field = None
    tenancy_shared = True
    objects = TenantManager()

    class Meta:
        ordering = ("-created",)
        constraints = [models.UniqueConstraint(fields=("build", "type"), name="firmware_image_build_type")]

    def __str__(self):
        return f"{self.build} {self.type}"

    @property
    def tenancy_organization_id(self):
        return self.build.category.organization_id

    @property
    def tenancy_site_id(self):
        return None

    @property
    def image_type(self):
        return get_image_type(self.type)

    @property
    def filename(self):
        return self.file.name.rsplit("/", 1)[-1].split("-", 1)[-1] if self.file else ""

    def fits(self, device):
        image_type = self.image_type
        return image_type is not None and image_type.fits(device.model)

    def clean(self):
        super().clean()
        if self.type and get_image_type(self.type) is None:
            raise ValidationError({"type": f"Unknown image type {self.type!r}."})


def incompatibility(device, image):
    """Why `image` cannot be flashed on `device` (another organization, a model it does not fit), or None."""
    organization_id = image.build.category.organization_id
    if organization_id is not None and organization_id != device.organization_id:
        return "The image belongs to another organization."
    image_type = image.image_type
    if image_type is None:
        return f"The image type {image.type!r} is unknown."
    if not device.model:
        return "The device's model is unknown, so the image cannot be checked to fit it."
    if not image_type.fits(device.model):
        return f"The image type {image.type} ({image_type.label}) does not fit the device model {device.model!r}."
    return None


class DeviceFirmware(DeviceScopedModel):
    """The firmware image a device is meant to run; `installed` once an upgrade to it succeeded."""

    device = models.OneToOneField("controller.Device", on_delete=models.CASCADE, related_name="devicefirmware")
    image = models.ForeignKey(FirmwareImage, on_delete=models.CASCADE, related_name="device_firmwares")
    installed = models.BooleanField(default=False)

    objects = TenantManager()

    class Meta:
        ordering = ("-created",)

    def __str__(self):
        return f"{self.image} on {self.device}"

    def clean(self):
        super().clean()
        if self.device_id and self.image_id:
            reason = incompatibility(self.device, self.image)
            if reason:
                raise ValidationError({"image": reason})


class BatchUpgradeOperation(OrganizationScopedModel):
    """A mass upgrade to a build: the devices it selected (optionally by group and location) each get an
    UpgradeOperation; the batch's status follows theirs. `organization` is the one whose devices it upgrades
    (empty only for a superuser's upgrade of a shared build across every organization)."""

    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        related_name="firmware_batches",
        null=True,
        blank=True,
    )
    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="batch_upgrades")
    group = models.ForeignKey(
        "controller.DeviceGroup", on_delete=models.SET_NULL, null=True, blank=True, related_name="firmware_batches"
    )
    location = models.ForeignKey(
        "geo.Location", on_delete=models.SET_NULL, null=True, blank=True, related_name="firmware_batches"
    )
    upgrade_all = models.BooleanField(
        default=True, help_text="Also upgrade devices that have no device firmware yet but whose model fits"
    )
    upgrade_options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.IDLE, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="firmware_batches"
    )
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created",)

    def __str__(self):
        return f"upgrade to {self.build}"


class UpgradeOperation(DeviceScopedModel):
    """One device's upgrade to an image: status, current step and progress (0-100), the log appended line by
    line as it runs, the sysupgrade options, and its timestamps. Flashing is the point of no return: before it
    an operation may be cancelled, after it only the device's return decides."""

    device = models.ForeignKey("controller.Device", on_delete=models.CASCADE, related_name="upgrade_operations")
    image = models.ForeignKey(
        FirmwareImage, on_delete=models.SET_NULL, null=True, blank=True, related_name="upgrade_operations"
    )
    batch = models.ForeignKey(
        BatchUpgradeOperation, on_delete=models.CASCADE, null=True, blank=True, related_name="operations"
    )
    connection = models.ForeignKey(
        "connections.DeviceConnection", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=UpgradeStatus.choices, default=UpgradeStatus.IN_PROGRESS, db_index=True
    )
    step = models.CharField(max_length=16, choices=UpgradeStep.choices, default=UpgradeStep.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    log = models.TextField(blank=True)
    upgrade_options = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="firmware_upgrades"
    )
    retry_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries")
    started = models.DateTimeField(null=True, blank=True, help_text="When a worker started running it")
    flashing_started = models.DateTimeField(null=True, blank=True, help_text="Past this it cannot be cancelled")
    finished = models.DateTimeField(null=True, blank=True)
    # past this, an operation still in progress is failed by the sweep (its worker died or its task was lost)
    deadline = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = TenantManager()

    class Meta:
        ordering = ("-created",)
        indexes = [models.Index(fields=("device", "-created"), name="firmware_upgrade_device")]
        constraints = [
            # one upgrade at a time per device: the database settles concurrent requests
            models.UniqueConstraint(
                fields=("device",),
                condition=Q(status="in-progress"),
                name="firmware_upgrade_one_in_progress",
                violation_error_message="An upgrade of this device is already in progress.",
            )
        ]

    def __str__(self):
        return f"upgrade of {self.device} to {self.image}"

    @property
    def is_finished(self):
        return self.status != UpgradeStatus.IN_PROGRESS

    def clean(self):
        super().clean()
        if not isinstance(self.upgrade_options, dict):
            raise ValidationError({"upgrade_options": "Must be a JSON object."})
        unknown = sorted(set(self.upgrade_options) - set(UPGRADE_OPTION_DEFAULTS))
        if unknown:
            raise ValidationError({"upgrade_options": f"Unknown options: {', '.join(unknown)}."})
