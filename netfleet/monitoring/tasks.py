from celery import shared_task
from django.conf import settings

from . import services
from .models import Alert


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def run_checks():
    """Beat, every NETFLEET_MONITORING_CHECK_INTERVAL: split the fleet into chunks of checks."""
    chunk = settings.NETFLEET_MONITORING_CHECK_CHUNK
    ids = [str(pk) for pk in services.devices_to_check().values_list("pk", flat=True)]
    for offset in range(0, len(ids), chunk):
        run_checks_chunk.delay(ids[offset : offset + chunk])


@shared_task(acks_late=True, time_limit=240, soft_time_limit=200)
def run_checks_chunk(device_ids):
    services.run_checks(device_ids=device_ids)


@shared_task(acks_late=True, time_limit=3000, soft_time_limit=2900)
def roll_up_points():
    """Beat, every NETFLEET_MONITORING_ROLLUP_INTERVAL. An hour per transaction: a run stopped by its time limit
    (a long catch-up) keeps what it did, and the next one continues."""
    services.roll_up_points()


@shared_task(acks_late=True, time_limit=3000, soft_time_limit=2900)
def apply_retention():
    services.apply_retention()


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(services.WebhookFailed,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=None,
)
def deliver_alert_webhook(self, alert_id):
    """Retried with exponential backoff; marked failed after NETFLEET_MONITORING_WEBHOOK_RETRIES retries."""
    alert = Alert.objects.select_related("device").filter(pk=alert_id).first()
    if alert is None or alert.webhook_status != "pending":
        return  # delivered already (redelivery is a no-op) or deleted
    try:
        services.deliver_alert_webhook(alert=alert)
    except services.WebhookFailed:
        if self.request.retries >= settings.NETFLEET_MONITORING_WEBHOOK_RETRIES:
            services.give_up_webhook(alert_id=alert_id)
            return
        raise


@shared_task(acks_late=True)
def send_alert_email(alert_id):
    alert = Alert.objects.select_related("device").filter(pk=alert_id).first()
    if alert is not None and alert.email_status == "pending":
        services.send_alert_email(alert=alert)
