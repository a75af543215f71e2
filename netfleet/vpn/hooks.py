"""How the VPN app plugs into the controller (see netfleet.controller.extensions)."""

from netfleet.pki.services import find_cert_by_common_name

from . import services


def client_variables(config):
    return services.client_context(config)


def sync_clients(config):
    services.sync_vpn_clients(config=config)


def release_clients(config):
    services.release_vpn_clients(config=config)


def group_of_certificate(*, common_name, groups, organization_slugs=()):
    """certificate -> VPN client -> device -> its group, if that group is among `groups` (the caller's)."""
    cert = find_cert_by_common_name(common_name, organization_slugs)
    device = services.device_for_certificate(cert) if cert is not None else None
    if device is None or device.group_id is None:
        return None
    return groups.filter(pk=device.group_id).first()
