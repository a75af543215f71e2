from celery import shared_task

from . import services


@shared_task(acks_late=True, time_limit=300, soft_time_limit=270)
def refresh_configs(config_ids):
    """Re-render a chunk of configs after a change that affects many devices (idempotent)."""
    services.refresh_configs(config_ids)
