"""WAL checkpoints off a SQLite writer's commits.

SQLite checkpoints its write-ahead log in the commit that crosses `wal_autocheckpoint` pages (1,000 by default):
that commit copies the log into the database file and syncs it, so one batch in a few takes several times longer.
A process that writes continuously (the monitoring writer) turns that off for its own connection and checkpoints
from a thread of its own instead, every `interval` seconds, in PASSIVE mode (it never waits for readers or
writers). Other processes' connections keep SQLite's automatic checkpoints. Nothing happens on other databases.
"""

import logging
import threading

from django.db import connection

logger = logging.getLogger("netfleet.db")


def is_sqlite():
    return connection.vendor == "sqlite"


def without_autocheckpoint():
    """Turn automatic checkpoints off for this thread's connection (call again after it may have been replaced)."""
    if is_sqlite():
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint=0")


def checkpoint_in_background(stop, interval=1.0):
    """Start a daemon thread checkpointing every `interval` s until `stop` (an Event) is set; None off SQLite."""
    if not is_sqlite():
        return None

    def run():
        try:
            while not stop.wait(interval):
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except Exception:
                    logger.warning("WAL checkpoint failed; retrying", exc_info=True)
                    connection.close()
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="netfleet-wal-checkpoint", daemon=True)
    thread.start()
    return thread
