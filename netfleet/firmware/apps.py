from django.apps import AppConfig


class FirmwareConfig(AppConfig):
    name = "netfleet.firmware"
    label = "firmware"
    verbose_name = "Firmware upgrades"

    def ready(self):
        from . import upgraders  # noqa: F401 - registers the built-in upgraders
