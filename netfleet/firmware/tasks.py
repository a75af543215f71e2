from celery import shared_task

from . import services


@shared_task(acks_late=True)
def run_upgrades(operation_ids):
    """Upgrade a chunk of devices (pks in; bounded concurrency inside). Routed to NETFLEET_FIRMWARE_QUEUE so slow
    upgrades never hold up the default queue. Redelivery of a finished or interrupted operation does nothing
    more."""
    services.run_upgrades(operation_ids=operation_ids)


@shared_task(ignore_result=True)
def fail_stale_upgrades():
    """Periodic: fail upgrades whose worker died, and update their batches."""
    services.fail_stale_upgrades()
