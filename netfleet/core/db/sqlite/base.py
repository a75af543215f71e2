"""Django's SQLite backend, with write transactions of a host's processes queued on a file lock.

SQLite lets one writer in at a time; the others wait in its busy handler, which polls with growing sleeps (up to
100 ms each) — so under concurrent writes (API creates, metric ingest, agent address updates from several
worker processes) the lock sits free while waiters sleep, and p99 latencies reach seconds. Here every
`BEGIN IMMEDIATE` first takes an exclusive `flock` on a file next to the database, released at commit or
rollback: a waiting writer sleeps in the kernel and wakes the moment the previous one finishes. Statements outside
transactions still rely on the busy handler (they hold SQLite's lock for one statement).
"""

import fcntl

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_lock = None  # the open lock file of this connection, while it holds the lock
    _writer_lock_path = None

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            self._writer_lock_path = f"{self.settings_dict['NAME']}-writer.lock"
        return connection

    def _start_transaction_under_autocommit(self):
        if self._writer_lock_path and self.transaction_mode == "IMMEDIATE" and self._writer_lock is None:
            handle = open(self._writer_lock_path, "a")  # noqa: SIM115 - held until commit or rollback
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._writer_lock = handle
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer_lock()
            raise

    def _commit(self):
        try:
            super()._commit()
        finally:
            self._release_writer_lock()

    def _rollback(self):
        try:
            super()._rollback()
        finally:
            self._release_writer_lock()

    def _close(self):
        try:
            super()._close()
        finally:
            self._release_writer_lock()

    def _release_writer_lock(self):
        handle, self._writer_lock = self._writer_lock, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
