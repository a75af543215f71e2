from django.db import models


class ConfigBackend(models.TextChoices):
    OPENWRT = "netjsonconfig.OpenWrt", "OpenWRT"
    OPENWISP = "netjsonconfig.OpenWisp", "OpenWISP Firmware 1.x"


class ConfigStatus(models.TextChoices):
    MODIFIED = "modified", "modified"
    APPLIED = "applied", "applied"
    ERROR = "error", "error"
    DEACTIVATING = "deactivating", "deactivating"
    DEACTIVATED = "deactivated", "deactivated"


class TemplateType(models.TextChoices):
    GENERIC = "generic", "Generic"
    VPN = "vpn", "VPN-client"
