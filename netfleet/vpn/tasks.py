from celery import shared_task

from . import services


@shared_task(acks_late=True, time_limit=1800, soft_time_limit=1750)
def generate_dh_parameters(vpn_id):
    """Generate an OpenVPN server's DH parameters (minutes at 2048+ bits); a no-op once they exist."""
    services.store_dh_parameters(vpn_id=vpn_id)
