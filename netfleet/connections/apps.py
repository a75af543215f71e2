from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "netfleet.connections"
    label = "connections"
    verbose_name = "Connections and commands"

    def ready(self):
        from . import signals  # noqa: F401 - registers the receivers
