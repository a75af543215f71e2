from celery import shared_task
from django.conf import settings

from . import services
from .connectors import DeviceUnreachable


@shared_task(bind=True, acks_late=True, max_retries=None)
def execute_command(self, command_id):
    """Run a command (pks in). Redelivery of a finished or interrupted command does nothing more."""
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
def schedule_config_pushes():
    """Periodic: queue the debounced pushes that are due."""
    services.schedule_config_pushes()


@shared_task(ignore_result=True)
def fail_stale_commands():
    """Periodic: fail commands whose worker died."""
    services.fail_stale_commands()
