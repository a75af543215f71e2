from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "netfleet.core"
    label = "core"
    verbose_name = "netfleet core"
