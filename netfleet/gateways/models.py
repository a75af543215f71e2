"""Gateways: managed devices reached through their vendor's management API (MikroTik RouterOS REST today)."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_ipv46_address
from django.db import models

from netfleet.core.fields import EncryptedTextField
from netfleet.core.models import TenantManager

from .choices import GatewayVendor

HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def validate_host(value):
    """An IPv4/IPv6 address or a DNS name, without scheme, port or path."""
    try:
        validate_ipv46_address(value)
        return
    except ValidationError:
        pass
    if not HOSTNAME_RE.match(value or "") or value.replace(".", "").isdigit():
        raise ValidationError("Enter a valid IP address or DNS host name (no scheme, port or path).", code="invalid")


class Gateway(models.Model):
    """A router or firewall managed through its vendor's API (host, port, credentials). routers-api.txt shows
    the MikroTik ones as "routers", with integer ids."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="gateways")
    site = models.ForeignKey("accounts.Site", on_delete=models.SET_NULL, null=True, blank=True, related_name="gateways")
    device = models.ForeignKey(
        "controller.Device",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="gateways",
        help_text="The controller's device record of this gateway, if any",
    )
    vendor = models.CharField(max_length=32, choices=GatewayVendor.choices, default=GatewayVendor.MIKROTIK)
    name = models.CharField(max_length=100)
    host = models.CharField(max_length=255, validators=[validate_host], help_text="IP address or DNS name")
    port = models.PositiveIntegerField(default=80, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    use_https = models.BooleanField(default=False)
    verify_tls = models.BooleanField(default=True, help_text="Check the router's certificate (HTTPS only)")
    ca_bundle = models.TextField(blank=True, help_text="PEM certificates to trust instead of the system's")
    username = models.CharField(max_length=50)
    password = EncryptedTextField(blank=True)
    is_online = models.BooleanField(default=False)
    last_checked = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1024, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    tenancy_organization_field = "organization"
    tenancy_site_field = "site"
    tenancy_shared = False

    objects = TenantManager()

    class Meta:
        ordering = ("id",)
        indexes = [models.Index(fields=("organization", "vendor"), name="gateways_gateway_org_vendor")]

    def __str__(self):
        return self.name

    @property
    def tenancy_organization_id(self):
        return self.organization_id

    @property
    def tenancy_site_id(self):
        return self.site_id

    @property
    def base_url(self):
        scheme = "https" if self.use_https else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def clean(self):
        super().clean()
        if self.site_id and self.organization_id and self.site.organization_id != self.organization_id:
            raise ValidationError({"site": "This site belongs to another organization."})
        if self.device_id and self.organization_id and self.device.organization_id != self.organization_id:
            raise ValidationError({"device": "This device belongs to another organization."})
        if self.ca_bundle and "-----BEGIN CERTIFICATE-----" not in self.ca_bundle:
            raise ValidationError({"ca_bundle": "Must be PEM certificates."})

    def validated_save(self, **kwargs):
        self.full_clean()
        self.save(**kwargs)
