from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "netfleet.core"
    label = "core"
    verbose_name = "netfleet core"

    def ready(self):
        from netfleet.core import schema  # noqa: F401 - registers the OpenAPI extensions
