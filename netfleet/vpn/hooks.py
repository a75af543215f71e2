"""How the VPN app plugs into the controller (see netfleet.controller.extensions)."""

from netfleet.pki.services import find_cert_by_common_name

from . import services


def client_variables(config):
    return services.client_context(config)


def sync_clients(config, templates, new):
    services.sync_vpn_clients(config=config, templates=templates, new=new)


def release_clients(config):
    services.release_vpn_clients(config=config)


def group_of_certificate(*, common_name, groups, organization_slugs=()):
    """certificate -> VPN client -> device -> its group, if that group is among `groups` (the caller's)."""
    cert = find_cert_by_common_name(common_name, organization_slugs)
    device = services.device_for_certificate(cert) if cert is not None else None
    if device is None or device.group_id is None:
        return None
    return groups.filter(pk=device.group_id).first()


class TemplateVpnField:
    """The template API's `vpn`: the VPN server a template of type `vpn` joins (null unlinks it)."""

    name = "vpn"

    def make_field(self, serializer):
        from rest_framework import serializers

        from netfleet.core.tenancy import get_access

        from .models import Vpn

        request = serializer.context.get("request")
        queryset = Vpn.objects.visible_to(get_access(request)) if request is not None else Vpn.objects.none()
        return serializers.PrimaryKeyRelatedField(
            queryset=queryset, required=False, allow_null=True, help_text="VPN server joined by a `vpn` template"
        )

    def to_representation(self, template):
        from .models import VpnTemplate

        return VpnTemplate.objects.filter(template=template).values_list("vpn_id", flat=True).first()

    def save(self, template, vpn):
        from .models import VpnTemplate

        if vpn is None:
            VpnTemplate.objects.filter(template=template).delete()
        else:
            services.link_template(template=template, vpn=vpn)


template_vpn_field = TemplateVpnField()
