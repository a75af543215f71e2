"""VPN servers, their clients, and the IP pools (a minimal IPAM) they draw tunnel addresses from."""

import ipaddress
import secrets

from django.core.exceptions import ValidationError
from django.db import models

from netfleet.core.fields import EncryptedTextField
from netfleet.core.models import NetfleetModel, OrganizationScopedModel, ShareableModel, TenantManager

from .choices import WIREGUARD_BACKENDS, VpnBackend


def generate_key():
    return secrets.token_hex(16)


class Subnet(OrganizationScopedModel):
    """An IP pool (IPv4 or IPv6 network) of one organization; subnets of an organization never overlap."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="subnets")
    name = models.CharField(max_length=100)
    subnet = models.CharField(max_length=43, help_text="CIDR, e.g. 10.8.0.0/24")
    version = models.PositiveSmallIntegerField(editable=False, default=4, help_text="4 or 6 (from the CIDR)")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ("name",)
        constraints = [models.UniqueConstraint(fields=("organization", "subnet"), name="vpn_subnet_org_cidr")]

    def __str__(self):
        return f"{self.name} ({self.subnet})"

    @property
    def network(self):
        return ipaddress.ip_network(self.subnet)

    def clean(self):
        super().clean()
        try:
            network = ipaddress.ip_network((self.subnet or "").strip(), strict=True)
        except ValueError as exc:
            raise ValidationError({"subnet": f"Not a valid network in CIDR notation: {exc}."}) from None
        if network.num_addresses < 4 and network.version == 4 and network.prefixlen != 32:
            raise ValidationError({"subnet": "Too small to hold tunnel addresses (use /30 or larger)."})
        self.subnet, self.version = str(network), network.version
        if self.organization_id:
            others = Subnet.objects.filter(organization_id=self.organization_id).exclude(pk=self.pk)
            for other in others.only("name", "subnet"):
                other_network = ipaddress.ip_network(other.subnet)
                if other_network.version == network.version and other_network.overlaps(network):
                    raise ValidationError({"subnet": f"Overlaps {other.subnet} ({other.name}) of this organization."})


class IpAddress(NetfleetModel):
    """An address allocated from a subnet (to a VPN server or client, or by hand)."""

    subnet = models.ForeignKey(Subnet, on_delete=models.CASCADE, related_name="ip_addresses")
    ip_address = models.GenericIPAddressField()
    description = models.CharField(max_length=100, blank=True)

    tenancy_organization_field = "subnet__organization"
    tenancy_site_field = None
    tenancy_shared = False
    objects = TenantManager()

    class Meta:
        ordering = ("created",)
        constraints = [models.UniqueConstraint(fields=("subnet", "ip_address"), name="vpn_ipaddress_subnet_ip")]

    def __str__(self):
        return self.ip_address

    @property
    def tenancy_organization_id(self):
        return self.subnet.organization_id

    @property
    def tenancy_site_id(self):
        return None

    def clean(self):
        super().clean()
        if self.subnet_id and self.ip_address and ipaddress.ip_address(self.ip_address) not in self.subnet.network:
            raise ValidationError({"ip_address": f"Not in the subnet {self.subnet.subnet}."})


class Vpn(ShareableModel):
    """A VPN server (OpenVPN or WireGuard) that devices join through VPN-client templates."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="vpns", null=True, blank=True
    )
    name = models.CharField(max_length=64)
    host = models.CharField(max_length=255, help_text="Hostname or address clients connect to")
    backend = models.CharField(max_length=64, choices=VpnBackend.choices, default=VpnBackend.OPENVPN)
    notes = models.TextField(blank=True)
    ca = models.ForeignKey("pki.Ca", on_delete=models.PROTECT, related_name="vpns", null=True, blank=True)
    cert = models.ForeignKey("pki.Cert", on_delete=models.PROTECT, related_name="vpns", null=True, blank=True)
    key = models.CharField(max_length=64, default=generate_key, help_text="The VPN server agent's secret key")
    dh = models.TextField(blank=True, help_text="Diffie-Hellman parameters (PEM), generated in the background")
    config = models.JSONField(default=dict, blank=True, help_text="NetJSON of the server (its backend's schema)")
    subnet = models.ForeignKey(Subnet, on_delete=models.PROTECT, related_name="vpns", null=True, blank=True)
    ip = models.ForeignKey(IpAddress, on_delete=models.SET_NULL, related_name="+", null=True, blank=True)
    public_key = models.CharField(max_length=44, blank=True, help_text="WireGuard public key (base64)")
    private_key = EncryptedTextField(blank=True, help_text="WireGuard private key (base64), encrypted at rest")

    class Meta:
        ordering = ("name",)
        verbose_name = "VPN server"
        constraints = [models.UniqueConstraint(fields=("organization", "name"), name="vpn_vpn_org_name")]

    def __str__(self):
        return self.name

    @property
    def is_wireguard(self):
        return self.backend in WIREGUARD_BACKENDS

    def clean(self):
        super().clean()
        if not isinstance(self.config, dict):
            raise ValidationError({"config": "Must be a JSON object."})
        for field in ("ca", "cert", "subnet"):
            related = getattr(self, field) if getattr(self, f"{field}_id") else None
            if related is not None and related.organization_id not in (None, self.organization_id):
                raise ValidationError({field: "This belongs to another organization."})
        if self.cert_id and self.ca_id and self.cert.ca_id != self.ca_id:
            raise ValidationError({"cert": "This certificate was not issued by the selected CA."})
        if self.is_wireguard and not self.subnet_id:
            raise ValidationError({"subnet": "WireGuard servers need a subnet to give their peers addresses."})
        if self.subnet_id and self.subnet.version != 4 and self.is_wireguard:
            raise ValidationError({"subnet": "Use an IPv4 subnet."})


class VpnTemplate(NetfleetModel):
    """Binds a template of type `vpn` to the VPN server its devices join."""

    template = models.OneToOneField("controller.Template", on_delete=models.CASCADE, related_name="vpn_link")
    vpn = models.ForeignKey(Vpn, on_delete=models.CASCADE, related_name="template_links")

    def __str__(self):
        return f"{self.template} -> {self.vpn}"


class VpnClient(NetfleetModel):
    """A device's membership of a VPN: its client certificate (OpenVPN) or peer key pair and tunnel address
    (WireGuard)."""

    vpn = models.ForeignKey(Vpn, on_delete=models.CASCADE, related_name="clients")
    config = models.ForeignKey("controller.Config", on_delete=models.CASCADE, related_name="vpn_clients")
    template = models.ForeignKey("controller.Template", on_delete=models.CASCADE, related_name="vpn_clients")
    cert = models.ForeignKey("pki.Cert", on_delete=models.SET_NULL, related_name="vpn_clients", null=True, blank=True)
    ip = models.ForeignKey(IpAddress, on_delete=models.SET_NULL, related_name="+", null=True, blank=True)
    public_key = models.CharField(max_length=44, blank=True)
    private_key = EncryptedTextField(blank=True)

    class Meta:
        ordering = ("created",)
        constraints = [models.UniqueConstraint(fields=("config", "vpn"), name="vpn_vpnclient_config_vpn")]

    def __str__(self):
        return f"{self.config_id} in {self.vpn}"
