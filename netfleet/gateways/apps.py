from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "netfleet.gateways"
    label = "gateways"
    verbose_name = "Gateways"
