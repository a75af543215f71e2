"""Hotspot packages (plans sold to WiFi users), their vouchers, and per-organization hotspot settings."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.validators import MaxValueValidator, MinLengthValidator, MinValueValidator, RegexValidator
from django.db import models

from netfleet.core.models import TenantManager

from .choices import PackageSyncState, PackageType

MONTH_HOURS = 720  # routers-api.txt: a monthly package is 30 days
MAX_HOURLY_HOURS = 24


def default_currency():
    return settings.NETFLEET_HOTSPOT_DEFAULT_CURRENCY


class HotspotSettings(models.Model):
    """An organization's hotspot settings (the currency its packages are priced in)."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="hotspot_settings"
    )
    currency = models.CharField(
        max_length=3,
        default=default_currency,
        validators=[RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code such as KES or USD.")],
    )

    tenancy_organization_field = "organization"
    tenancy_site_field = None
    objects = TenantManager()

    class Meta:
        verbose_name_plural = "hotspot settings"

    def __str__(self):
        return f"hotspot settings of {self.organization}"

    @property
    def tenancy_organization_id(self):
        return self.organization_id


class RouterScopedModel(models.Model):
    """Belongs to a gateway, and through it to the gateway's organization and site."""

    id = models.BigAutoField(primary_key=True)

    tenancy_organization_field = "router__organization"
    tenancy_site_field = "router__site"
    tenancy_shared = False
    objects = TenantManager()

    class Meta:
        abstract = True

    @property
    def tenancy_organization_id(self):
        return self.router.organization_id

    @property
    def tenancy_site_id(self):
        return self.router.site_id


class Package(RouterScopedModel):
    """A hotspot plan on one router: duration, price and speeds. Synced to the router as a hotspot user profile
    (`rate-limit`, `session-timeout`, `shared-users`); the sync state and last error are kept here."""

    router = models.ForeignKey("gateways.Gateway", on_delete=models.CASCADE, related_name="packages")
    name = models.CharField(max_length=100)
    package_type = models.CharField(max_length=16, choices=PackageType.choices)
    duration_hours = models.PositiveIntegerField()
    price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))])
    download_speed_mbps = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(100_000)])
    upload_speed_mbps = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(100_000)])
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    shared_users = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)], help_text="Devices per login"
    )
    profile_id = models.CharField(max_length=32, blank=True, help_text="RouterOS id of the hotspot user profile")
    sync_state = models.CharField(max_length=16, choices=PackageSyncState.choices, default=PackageSyncState.PENDING)
    sync_error = models.CharField(max_length=1024, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=("router", "name"), name="hotspot_package_router_name")]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if self.duration_hours is None:
            return
        if self.package_type == PackageType.HOURLY and not 1 <= self.duration_hours <= MAX_HOURLY_HOURS:
            raise ValidationError({"duration_hours": "An hourly package lasts 1 to 24 hours."})
        if self.package_type == PackageType.MONTHLY and self.duration_hours != MONTH_HOURS:
            raise ValidationError({"duration_hours": "A monthly package lasts 720 hours (30 days)."})

    @property
    def currency(self):
        try:
            return self.router.organization.hotspot_settings.currency
        except ObjectDoesNotExist:
            return settings.NETFLEET_HOTSPOT_DEFAULT_CURRENCY

    @property
    def duration_display(self):
        if self.package_type == PackageType.MONTHLY and self.duration_hours == MONTH_HOURS:
            return "1 month"
        return f"{self.duration_hours} hour" + ("" if self.duration_hours == 1 else "s")

    @property
    def profile_name(self):
        return self.name


class Voucher(RouterScopedModel):
    """A hotspot user generated for a package: `code` is its login (and password) on the router."""

    router = models.ForeignKey("gateways.Gateway", on_delete=models.CASCADE, related_name="vouchers")
    package = models.ForeignKey(Package, on_delete=models.SET_NULL, null=True, blank=True, related_name="vouchers")
    code = models.CharField(max_length=64, validators=[MinLengthValidator(4)])
    user_id = models.CharField(max_length=32, blank=True, help_text="RouterOS id of the hotspot user")
    limit_uptime = models.CharField(max_length=32, blank=True)
    limit_bytes_total = models.BigIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=("router", "code"), name="hotspot_voucher_router_code")]

    def __str__(self):
        return self.code
