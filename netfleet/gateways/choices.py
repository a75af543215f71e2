from django.db import models


class GatewayVendor(models.TextChoices):
    """Vendors with a management API adapter. Only MikroTik has one today; the column takes the others as they
    come (a plain string column: a new vendor is a choice, not a schema change)."""

    MIKROTIK = "mikrotik", "MikroTik RouterOS"
    OPENWRT = "openwrt", "OpenWrt"
    OPNSENSE = "opnsense", "OPNsense"
    PFSENSE = "pfsense", "pfSense"
    UNIFI = "unifi", "UniFi"
    OMADA = "omada", "Omada"
    PROXMOX = "proxmox", "Proxmox VE"
