"""Devices, their configuration, templates and groups."""

import re
import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from netfleet.core.fields import EncryptedTextField
from netfleet.core.models import NetfleetModel, OrganizationScopedModel, ShareableModel, TenantManager

from .choices import ConfigBackend, ConfigStatus, TemplateType

HOSTNAME_RE = re.compile(
    r"^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)
MAC_RE = re.compile(r"^([0-9A-Fa-f]{2})([-:.]?)([0-9A-Fa-f]{2})(\2[0-9A-Fa-f]{2}){4}$")
KEY_RE = re.compile(r"^[A-Za-z0-9]{16,64}$")


def normalize_mac(value):
    """'aa-bb-cc-dd-ee-ff', 'AABB.CCDD.EEFF', 'aabbccddeeff' -> 'AA:BB:CC:DD:EE:FF'; None if not a MAC."""
    digits = re.sub(r"[^0-9A-Fa-f]", "", value or "")
    if len(digits) != 12 or not re.fullmatch(r"[0-9A-Fa-f:.\-]+", value or ""):
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2)).upper()


def generate_key():
    return secrets.token_hex(16)


def validate_device_name(value):
    if not (HOSTNAME_RE.match(value) or normalize_mac(value)):
        raise ValidationError("Must be a valid hostname or MAC address.", code="invalid")


class DeviceGroup(OrganizationScopedModel):
    """Devices that share templates, variables (`context`) and free-form `meta_data`."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="device_groups")
    name = models.CharField(max_length=60)
    description = models.TextField(blank=True)
    meta_data = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="Configuration variables of the group's devices")
    templates = models.ManyToManyField("Template", blank=True, related_name="device_groups")

    class Meta:
        ordering = ("name",)
        constraints = [models.UniqueConstraint(fields=("organization", "name"), name="controller_group_org_name")]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        for field in ("meta_data", "context"):
            if not isinstance(getattr(self, field), dict):
                raise ValidationError({field: "Must be a JSON object."})


class Template(ShareableModel):
    """A reusable piece of NetJSON configuration merged into device configs, in order."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="templates", null=True, blank=True
    )
    name = models.CharField(max_length=64)
    backend = models.CharField(max_length=64, choices=ConfigBackend.choices, default=ConfigBackend.OPENWRT)
    type = models.CharField(max_length=16, choices=TemplateType.choices, default=TemplateType.GENERIC)
    default = models.BooleanField(default=False, db_index=True, help_text="Added to new devices automatically")
    required = models.BooleanField(default=False, db_index=True, help_text="Always applied; cannot be removed")
    config = models.JSONField(default=dict, blank=True)
    default_values = models.JSONField(default=dict, blank=True, help_text="Default values of the template's variables")
    tags = models.JSONField(default=list, blank=True, help_text="Devices registering with a tag get this template")

    class Meta:
        ordering = ("name",)
        constraints = [models.UniqueConstraint(fields=("organization", "name"), name="controller_template_org_name")]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if self.required and not self.default:
            self.default = True  # a required template is necessarily applied by default
        if not isinstance(self.default_values, dict):
            raise ValidationError({"default_values": "Must be a JSON object."})
        if not isinstance(self.tags, list) or not all(isinstance(tag, str) for tag in self.tags):
            raise ValidationError({"tags": "Must be a list of strings."})
        from .rendering import validate_netjson

        validate_netjson(self.backend, self.config, field="config", context=self.default_values)


class Device(OrganizationScopedModel):
    """A network device under management (router, access point, gateway)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="devices")
    site = models.ForeignKey("accounts.Site", on_delete=models.SET_NULL, null=True, blank=True, related_name="devices")
    group = models.ForeignKey(DeviceGroup, on_delete=models.SET_NULL, null=True, blank=True, related_name="devices")
    name = models.CharField(max_length=64, validators=[validate_device_name])
    mac_address = models.CharField(max_length=17, help_text="Primary MAC address")
    key = models.CharField(max_length=64, unique=True, default=generate_key, help_text="The device's secret key")
    hardware_id = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=64, blank=True)
    os = models.CharField(max_length=128, blank=True)
    system = models.CharField(max_length=128, blank=True)
    notes = models.TextField(blank=True)
    management_ip = models.GenericIPAddressField(null=True, blank=True)
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    is_deactivated = models.BooleanField(default=False)

    tenancy_site_field = "site"

    class Meta:
        ordering = ("-created",)
        constraints = [
            models.UniqueConstraint(Lower("name"), "organization", name="controller_device_org_name_ci"),
            models.UniqueConstraint(fields=("organization", "mac_address"), name="controller_device_org_mac"),
        ]
        indexes = [
            # newest-first pages of one organization, and of all of them (superusers): no sort of the whole table
            models.Index(fields=("organization", "-created"), name="controller_device_org_created"),
            models.Index(fields=("-created",), name="controller_device_created"),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        mac = normalize_mac(self.mac_address)
        if mac is None:
            raise ValidationError({"mac_address": "Enter a valid MAC address."})
        self.mac_address = mac
        if self.key and not KEY_RE.match(self.key):
            raise ValidationError({"key": "Must be 16 to 64 letters or digits."})
        if self.group_id and self.group.organization_id != self.organization_id:
            raise ValidationError({"group": "This group belongs to another organization."})
        if self.site_id and self.site.organization_id != self.organization_id:
            raise ValidationError({"site": "This site belongs to another organization."})


class Config(NetfleetModel):
    """A device's configuration: backend, its own NetJSON, variables, ordered templates and apply status."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="config")
    backend = models.CharField(max_length=64, choices=ConfigBackend.choices, default=ConfigBackend.OPENWRT)
    config = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="Configuration variables of this device")
    templates = models.ManyToManyField(Template, through="ConfigTemplate", blank=True, related_name="configs")
    status = models.CharField(max_length=16, choices=ConfigStatus.choices, default=ConfigStatus.MODIFIED, db_index=True)
    error_reason = models.CharField(max_length=1024, blank=True)
    # md5 of the last rendered archive: status becomes `modified` only when it really changes
    checksum = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ("device__name",)

    def __str__(self):
        return f"config of {self.device}"

    @property
    def tenancy_organization_id(self):
        return self.device.organization_id

    @property
    def tenancy_site_id(self):
        return self.device.site_id

    def clean(self):
        super().clean()
        if not isinstance(self.context, dict):
            raise ValidationError({"context": "Must be a JSON object."})
        if not self.config:
            return  # nothing of its own to validate (rendering validates the config merged with its templates)
        from .rendering import validate_netjson, variables_for

        context = variables_for(self) if self.device_id else self.context
        validate_netjson(self.backend, self.config, field="config", context=context)

    def ordered_templates(self):
        return [link.template for link in self.template_links.select_related("template").order_by("order")]


class ConfigTemplate(models.Model):
    """The order of a config's templates (later templates override earlier ones)."""

    config = models.ForeignKey(Config, on_delete=models.CASCADE, related_name="template_links")
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="config_links")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("order",)
        constraints = [models.UniqueConstraint(fields=("config", "template"), name="controller_configtemplate_unique")]

    def __str__(self):
        return f"{self.template} #{self.order}"


class OrganizationConfigSettings(NetfleetModel):
    """Per-organization controller settings: registration, its shared secret, variables and the device limit."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="config_settings"
    )
    registration_enabled = models.BooleanField(default=True)
    shared_secret = EncryptedTextField(help_text="Devices register with this secret")
    # the secret is encrypted (not searchable); registration finds the organization by this digest
    shared_secret_digest = models.CharField(max_length=64, unique=True)
    context = models.JSONField(default=dict, blank=True, help_text="Configuration variables of every device")
    device_limit = models.PositiveIntegerField(default=0, help_text="0 means unlimited")

    tenancy_organization_field = "organization"
    tenancy_site_field = None
    tenancy_shared = False
    objects = TenantManager()

    def __str__(self):
        return f"config settings of {self.organization}"

    @property
    def tenancy_organization_id(self):
        return self.organization_id
