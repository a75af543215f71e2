from celery import shared_task
from django.conf import settings

from . import services
from .connectors import DeviceUnreachable


@shared_task(acks_late=True)
def execute_waiting_commands():
    """Run the commands waiting for a worker, as one concurrent batch (queued by every new command: the first
    task takes all that wait, later ones find nothing left and return at once)."""
    services.execute_waiting_commands()


@shared_task(bind=True, acks_late=True, max_retries=None)
def execute_command(self, command_id):
    """Run one command (pks in): the retries of a command whose device was unreachable. Redelivery of a
    finished or interrupted command does nothing more."""
    command = services.command_to_run(command_id)
    if command is None:
        return
    retries = settings.NETFLEET_CONNECTIONS_COMMAND_RETRIES
    try:
        services.execute_command(command=command, retry_allowed=self.request.retries < retries)
    except DeviceUnreachable as exc:
        raise self.retry(exc=exc, countdown=services.retry_delay(self.request.retries)) from None


@shared_task(acks_late=True)
def push_configs(connection_ids):
    """Push the configuration of a chunk of devices (bounded concurrency inside)."""
    services.push_configs(connection_ids=connection_ids)


@shared_task(ignore_result=True)
def schedule_config_pushes(connection_ids=None):
    """Queue the debounced pushes that are due: periodic over every device, or queued by a configuration change
    for the connections it armed."""
    services.schedule_config_pushes(connection_ids=connection_ids)


@shared_task(ignore_result=True)
def fail_stale_commands():
    """Periodic: fail commands whose worker died."""
    services.fail_stale_commands()


@shared_task(ignore_result=True)
def retest_connections():
    """Periodic: queue tests of the connections that failed (or were never tried) a while ago."""
    services.retest_connections()


@shared_task(acks_late=True)
def check_connections(connection_ids):
    """Test a chunk of connections (bounded concurrency inside); idempotent."""
    services.check_connections(connection_ids=connection_ids)
