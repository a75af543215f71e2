from django.apps import AppConfig


class VpnConfig(AppConfig):
    name = "netfleet.vpn"
    label = "vpn"
    verbose_name = "VPN servers and IP pools"

    def ready(self):
        from netfleet.controller import extensions
        from netfleet.controller import services as controller_services

        from . import hooks

        for registry, function in (
            (extensions.CONTEXT_PROVIDERS, hooks.client_variables),
            (extensions.TEMPLATES_CHANGED, hooks.sync_clients),
            (extensions.CONFIG_RELEASED, hooks.release_clients),
            (controller_services.CERTIFICATE_GROUP_LOOKUPS, hooks.group_of_certificate),
        ):
            if function not in registry:
                registry.append(function)
        if hooks.template_vpn_field not in extensions.TEMPLATE_FIELDS:
            extensions.TEMPLATE_FIELDS.append(hooks.template_vpn_field)
