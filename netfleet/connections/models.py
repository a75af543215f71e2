"""Credentials, device connections and the commands run over them."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from netfleet.core.fields import EncryptedTextField
from netfleet.core.models import NetfleetModel, ShareableModel, TenantManager, TenantQuerySet

from .choices import CommandStatus, Connector, UpdateStrategy


class Credentials(ShareableModel):
    """How to log in to devices: a connector, its parameters and secrets (encrypted at rest, never shown).

    With `auto_add`, the credentials are attached to every device of the organization (of every organization
    when shared), existing and new."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="credentials", null=True, blank=True
    )
    name = models.CharField(max_length=64)
    connector = models.CharField(max_length=32, choices=Connector.choices, default=Connector.SSH)
    params = models.JSONField(default=dict, blank=True, help_text="Connector parameters, without secrets")
    password = EncryptedTextField(blank=True)
    private_key = EncryptedTextField(blank=True)
    auto_add = models.BooleanField(default=False, help_text="Attach to every device of the organization")

    class Meta:
        ordering = ("name",)
        verbose_name_plural = "credentials"
        constraints = [
            models.UniqueConstraint(fields=("organization", "name"), name="connections_credentials_org_name")
        ]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        from .connectors import get_connector

        get_connector(self.connector).validate_credentials(self)


class DeviceScopedModel(NetfleetModel):
    """A row that belongs to a device: scoped by the device's organization and site."""

    tenancy_organization_field = "device__organization"
    tenancy_site_field = "device__site"
    tenancy_shared = False

    class Meta:
        abstract = True

    @property
    def tenancy_organization_id(self):
        return self.device.organization_id

    @property
    def tenancy_site_id(self):
        return self.device.site_id


class DeviceConnectionQuerySet(TenantQuerySet):
    def usable(self):
        """Enabled connections not known to be broken, the ones that worked last first."""
        return (
            self.filter(enabled=True)
            .exclude(is_working=False)
            .order_by(models.F("is_working").desc(nulls_last=True), "created")
        )


class DeviceConnection(DeviceScopedModel):
    """A way to reach one device: credentials, how configuration is pushed, and whether it works.

    The device's SSH host key is trusted on first use and verified afterwards (`host_key`)."""

    device = models.ForeignKey("controller.Device", on_delete=models.CASCADE, related_name="connections")
    credentials = models.ForeignKey(Credentials, on_delete=models.CASCADE, related_name="connections")
    update_strategy = models.CharField(
        max_length=32,
        choices=UpdateStrategy.choices,
        default=UpdateStrategy.OPENWRT_SSH,
        blank=True,
        help_text="How configuration changes are pushed (empty: never pushed, the agent polls)",
    )
    enabled = models.BooleanField(default=True)
    is_working = models.BooleanField(null=True, blank=True, default=None)
    failure_reason = models.CharField(max_length=1024, blank=True)
    last_attempt = models.DateTimeField(null=True, blank=True)
    host_key = models.TextField(
        blank=True, help_text="The device's SSH host key (OpenSSH format), trusted on first use"
    )
    # configuration push debounce: the checksum waiting to be pushed, and when
    push_checksum = models.CharField(max_length=32, blank=True)
    push_due = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = TenantManager.from_queryset(DeviceConnectionQuerySet)()

    class Meta:
        ordering = ("created",)
        constraints = [
            models.UniqueConstraint(fields=("device", "credentials"), name="connections_deviceconnection_unique")
        ]

    def __str__(self):
        return f"{self.credentials} on {self.device}"

    def clean(self):
        super().clean()
        credentials, device = getattr(self, "credentials", None), getattr(self, "device", None)
        if credentials and device and credentials.organization_id not in (None, device.organization_id):
            raise ValidationError({"credentials": "These credentials belong to another organization."})


class Command(DeviceScopedModel):
    """A command run on a device in the background: its input, status, output and exit code."""

    device = models.ForeignKey("controller.Device", on_delete=models.CASCADE, related_name="commands")
    connection = models.ForeignKey(
        DeviceConnection, on_delete=models.SET_NULL, null=True, blank=True, related_name="commands"
    )
    type = models.CharField(max_length=32)
    input = models.JSONField(default=dict, blank=True)
    # secret inputs (a new password) are kept apart, encrypted, and never shown
    secret_input = EncryptedTextField(blank=True)
    status = models.CharField(
        max_length=16, choices=CommandStatus.choices, default=CommandStatus.IN_PROGRESS, db_index=True
    )
    output = models.TextField(blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    failure_reason = models.CharField(max_length=1024, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="commands"
    )
    started = models.DateTimeField(null=True, blank=True, help_text="When a worker started running it")
    finished = models.DateTimeField(null=True, blank=True)
    # past this, a command still in progress is failed by the sweep (its worker died or its task was lost)
    deadline = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = TenantManager()

    class Meta:
        ordering = ("-created",)
        indexes = [models.Index(fields=("device", "-created"), name="connections_command_device")]

    def __str__(self):
        return f"{self.type} on {self.device}"

    @property
    def is_finished(self):
        return self.status != CommandStatus.IN_PROGRESS

    def clean(self):
        super().clean()
        from .commands import get_command_type

        if get_command_type(self.type) is None:
            raise ValidationError({"type": f"Unknown command type {self.type!r}."})
        if self.connection_id and self.device_id and self.connection.device_id != self.device_id:
            raise ValidationError({"connection": "This connection belongs to another device."})
