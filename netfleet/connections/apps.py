from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "netfleet.connections"
    label = "connections"
    verbose_name = "Connections and commands"

    def ready(self):
        from netfleet.controller import extensions

        from . import hooks

        for registry, function in (
            (extensions.DEVICE_CREATED, hooks.attach_auto_credentials),
            (extensions.CONFIGS_MODIFIED, hooks.arm_config_pushes),
        ):
            if function not in registry:
                registry.append(function)
