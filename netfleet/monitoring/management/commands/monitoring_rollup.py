"""`netfleet monitoring_rollup`: roll up the closed hours now, as the beat task does every few minutes."""

from django.core.management.base import BaseCommand

from netfleet.monitoring import services
from netfleet.monitoring.models import RollupProgress
from netfleet.monitoring.timeseries import from_us


class Command(BaseCommand):
    help = (
        "Count the raw points of every hour that closed at least NETFLEET_MONITORING_ROLLUP_GRACE seconds ago into "
        "the hourly rollups (what the monitoring-roll-up-points beat task does every "
        "NETFLEET_MONITORING_ROLLUP_INTERVAL seconds). Safe to run at any time: nothing is counted twice."
    )

    def handle(self, *args, **options):
        written = services.roll_up_points()
        progress = RollupProgress.objects.filter(pk=1).first()
        until = from_us(progress.rolled_up_until).isoformat() if progress else "the beginning"
        self.stdout.write(f"monitoring_rollup: {written} rollup row(s) written; hours before {until} are rolled up")
