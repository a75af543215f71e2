"""Write-behind through a durable spool: accept now, store in large batches on a writer thread.

A request that would otherwise wait for its own small transaction appends its item to this process's spool file
(one `write()` of one line) and queues it; the process's writer thread stores everything queued in one batch (one
transaction) while the next requests are being accepted. Batches grow with the load instead of being capped by the
threads that wait, and the database's write lock is taken once per batch, not once per request.

Nothing acknowledged is lost when a process dies: the line is in the spool file before the request is answered
(in the operating system's page cache, the same durability as a SQLite commit with `synchronous=NORMAL`). Each
process holds an `flock` on its own lock file for its lifetime; a writer that can take the lock of another
process's spool knows that process is gone and stores its items again (at start, then every `rescan_interval`).
Storing must therefore be idempotent (ingest's points are deduplicated by their series and time, its state only
moves forward). A spool segment is deleted once every item in it has been stored (or given up on, logged); a new
segment starts after `segment_bytes`.

The queue is bounded: when the writer falls `max_pending` items behind, submitters wait for room, so a database
that cannot keep up slows the answers down instead of piling up work.
"""

import contextlib
import fcntl
import logging
import os
import threading
import time
import uuid
from collections import deque
from pathlib import Path

logger = logging.getLogger("netfleet.spool")

_SUFFIX = ".spool"
_LOCK_SUFFIX = ".lock"


class _Segment:
    __slots__ = ("path", "fd", "size", "outstanding")

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = 0
        self.outstanding = 0  # items appended and not yet stored


class SpooledWriter:
    """`write_batch(items)` stores a batch (raises on failure); `encode(item) -> bytes` (one line, no newline) and
    `decode(bytes) -> item or None` (None: nothing to store any more) turn items into spool lines and back;
    `finish()` runs on the writer thread when it stops (e.g. closing its database connections)."""

    def __init__(
        self,
        directory,
        *,
        write_batch,
        encode,
        decode,
        finish=None,
        max_batch=512,
        max_pending=4096,
        segment_bytes=8 << 20,
        rescan_interval=30.0,
        attempts=3,
    ):
        self.directory = Path(directory)
        self._write_batch, self._encode, self._decode, self._finish = write_batch, encode, decode, finish
        self.max_batch, self.max_pending, self.segment_bytes = max_batch, max_pending, segment_bytes
        self.rescan_interval, self.attempts = rescan_interval, attempts
        self._cond = threading.Condition()
        self._pid = None

    # --- submitting ------------------------------------------------------------------------------------------

    def submit(self, item):
        """Spool and queue `item`; returns once it is in the spool file (not yet stored)."""
        line = self._encode(item) + b"\n"
        with self._cond:
            if self._pid != os.getpid():
                self._start()  # first use in this process (or after a fork: threads do not survive it)
            while len(self._queue) >= self.max_pending and self._thread.is_alive():
                self._cond.wait()
            segment = self._segment
            if segment.size >= self.segment_bytes:
                segment = self._rotate()
            os.write(segment.fd, line)
            segment.size += len(line)
            segment.outstanding += 1
            self._queue.append((segment, item))
            self._submitted += 1
            self._cond.notify_all()

    def flush(self, timeout=None):
        """Wait until every item submitted so far is stored; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._pid != os.getpid():
                return True
            target = self._submitted
            while self._finished < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    @property
    def backlog(self):
        """Items submitted in this process and not stored yet."""
        with self._cond:
            return 0 if self._pid != os.getpid() else self._submitted - self._finished

    def stop(self, timeout=10.0):
        """Store what is queued, then stop the writer thread; whatever is left stays spooled for a later writer."""
        with self._cond:
            if self._pid != os.getpid():
                return
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        with self._cond:
            if self._thread.is_alive():
                return  # still storing: its spool stays, and is replayed once this process is gone
            for segment in list(self._segments):
                if segment.outstanding == 0:
                    self._drop(segment)
            self._pid = None
            os.close(self._lock_fd)
            with contextlib.suppress(FileNotFoundError):
                if not self._segments:
                    os.unlink(self._lock_path)

    def _start(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._token = uuid.uuid4().hex[:16]
        self._lock_path = self.directory / f"{self._token}{_LOCK_SUFFIX}"
        self._lock_fd = os.open(self._lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # held while this process lives: its spool is not orphaned
        self._queue = deque()
        self._segments = []
        self._sequence = 0
        self._submitted = self._finished = 0
        self._stopping = False
        self._segment = None
        self._rotate()
        self._thread = threading.Thread(target=self._run, name="netfleet-spool-writer", daemon=True)
        self._thread.start()

    def _rotate(self):
        previous = self._segment
        if previous is not None and previous.outstanding == 0:
            self._drop(previous)  # everything in it is stored already
        self._sequence += 1
        self._segment = _Segment(self.directory / f"{self._token}-{self._sequence:08d}{_SUFFIX}")
        self._segments.append(self._segment)
        return self._segment

    def _drop(self, segment):
        os.close(segment.fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(segment.path)
        self._segments.remove(segment)

    # --- the writer thread -----------------------------------------------------------------------------------

    def _run(self):
        try:
            self._write_until_stopped()
        finally:
            if self._finish is not None:
                self._finish()

    def _write_until_stopped(self):
        next_scan = 0.0
        while True:
            if time.monotonic() >= next_scan:
                self._replay_orphans()
                next_scan = time.monotonic() + self.rescan_interval
            with self._cond:
                while not self._queue and not self._stopping:
                    if not self._cond.wait(max(0.0, next_scan - time.monotonic())):
                        break  # time to look for orphaned spools again
                if not self._queue:
                    if self._stopping:
                        return
                    continue
                taken = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self._store([item for _, item in taken])
            with self._cond:
                for segment, _ in taken:
                    segment.outstanding -= 1
                for segment in {segment for segment, _ in taken}:
                    if segment.outstanding == 0 and segment is not self._segment:
                        self._drop(segment)
                self._finished += len(taken)
                self._cond.notify_all()

    def _store(self, items):
        """Store a batch; when it fails, each item alone (so one bad item cannot fail the others), retrying with a
        short backoff (the database may be briefly unavailable) before giving up on it, logged."""
        try:
            self._write_batch(items)
            return
        except Exception:
            if len(items) == 1:
                logger.warning("spooled batch failed; retrying its item", exc_info=True)
            else:
                logger.warning("spooled batch of %d failed; storing its items one by one", len(items), exc_info=True)
        for item in items:
            for attempt in range(self.attempts):
                try:
                    self._write_batch([item])
                    break
                except Exception:
                    if attempt + 1 == self.attempts:
                        logger.exception("spooled item could not be stored; dropped: %r", item)
                    else:
                        time.sleep(0.2 * 2**attempt)

    def _replay_orphans(self):
        """Store the spools of processes that are gone (their lock is free), oldest segment first."""
        for lock_path in sorted(self.directory.glob(f"*{_LOCK_SUFFIX}")):
            token = lock_path.name[: -len(_LOCK_SUFFIX)]
            if token == self._token:
                continue
            try:
                fd = os.open(lock_path, os.O_WRONLY)
            except FileNotFoundError:
                continue  # another writer replayed it meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive (or another writer is replaying it)
                segments = sorted(self.directory.glob(f"{token}-*{_SUFFIX}"))
                for segment in segments:
                    self._replay(segment)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock_path)
            except Exception:
                logger.exception("replaying the spool %s failed; it is kept for the next attempt", token)
            finally:
                os.close(fd)

    def _replay(self, path):
        items = []
        with open(path, "rb") as spool:
            for number, line in enumerate(spool, 1):
                if not line.endswith(b"\n"):
                    logger.warning("%s: line %d is incomplete (the process died writing it); skipped", path, number)
                    continue
                try:
                    item = self._decode(line[:-1])
                except Exception:
                    logger.exception("%s: line %d cannot be read; skipped", path, number)
                    continue
                if item is not None:
                    items.append(item)
        for offset in range(0, len(items), self.max_batch):
            self._store(items[offset : offset + self.max_batch])
        logger.info("replayed %d spooled items of %s", len(items), path.name)
        path.unlink()
