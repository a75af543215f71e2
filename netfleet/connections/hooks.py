"""How the connections app plugs into the controller (see netfleet.controller.extensions)."""

from . import services


def attach_auto_credentials(device):
    services.attach_auto_credentials(device=device)


def arm_config_pushes(config_ids):
    services.arm_config_pushes(config_ids=config_ids)
