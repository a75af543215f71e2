from django.apps import AppConfig


class VpnConfig(AppConfig):
    name = "netfleet.vpn"
    label = "vpn"
    verbose_name = "VPN servers and IP pools"
