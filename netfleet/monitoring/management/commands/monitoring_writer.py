"""`netfleet monitoring_writer`: store the metric documents the HTTP workers spooled (started by `netfleet serve`)."""

import signal
import threading

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connections

from netfleet.core.db.checkpoint import checkpoint_in_background, without_autocheckpoint
from netfleet.core.spool import run_writer
from netfleet.monitoring import ingest


class Command(BaseCommand):
    help = (
        "Store the monitoring documents that the HTTP workers accepted into the spool (NETFLEET_DATA_DIR/spool/"
        "monitoring), in batches, until stopped (SIGTERM or Ctrl-C: what is spooled by then is stored first). "
        "`netfleet serve` runs it; one writer per data directory (a second one waits for the first)."
    )

    def handle(self, *args, **options):
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        checkpointer = checkpoint_in_background(stop)
        try:
            run_writer(ingest.spool_reader(), stop=stop, after_drain=_housekeeping)
        finally:
            connections.close_all()
            if checkpointer is not None:
                checkpointer.join(5)


def _housekeeping():
    close_old_connections()  # as after a request: an old connection is renewed, a broken one replaced
    without_autocheckpoint()  # the checkpointer thread does it, outside the batches (on a new connection too)
