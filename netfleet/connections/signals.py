"""Database-only reactions to other apps' rows. New devices get the `auto_add` credentials that apply to them:
the controller creates devices in several places (API, agent registration, shell) and knows nothing of
connections, so this is the one place that sees them all."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from netfleet.controller.models import Device

from . import services


@receiver(post_save, sender=Device, dispatch_uid="connections-auto-add-credentials")
def attach_auto_credentials(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        services.attach_auto_credentials(device=instance)
