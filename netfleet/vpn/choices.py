from django.db import models


class VpnBackend(models.TextChoices):
    # the reference system's values, so its clients and filters keep working
    OPENVPN = "openwisp_controller.vpn_backends.OpenVpn", "OpenVPN"
    WIREGUARD = "openwisp_controller.vpn_backends.Wireguard", "WireGuard"
    VXLAN_WIREGUARD = "openwisp_controller.vpn_backends.VxlanWireguard", "VXLAN over WireGuard"


WIREGUARD_BACKENDS = (VpnBackend.WIREGUARD, VpnBackend.VXLAN_WIREGUARD)
