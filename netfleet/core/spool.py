"""A durable spool between the processes that accept work and the one process that stores it in large batches.

An HTTP worker that accepts an item appends it as one line to its own spool segment (one `write()`) and answers:
the line is in the file before the answer (in the operating system's page cache — the same durability as a SQLite
commit with `synchronous=NORMAL`). The spool writer (`netfleet monitoring_writer`, started by `netfleet serve`)
reads every segment's new lines and stores them in batches of up to `max_batch` items in one transaction each, on
its own core: the HTTP workers never wait for the database's write lock, and the writer takes it once per batch.

Each appending process holds an `flock` on its own lock file for its lifetime. A segment is deleted by the writer
once it has stored all of it and nothing more can be appended to it: its process moved on to a newer segment (every
`segment_bytes`), or is gone (its lock is free — the lines of a process that died are stored like any others).
After every batch the writer records in each process's progress file how far it has stored that process's spool;
a restarted writer continues from there. Storing must still be idempotent: a writer that dies between storing a
batch and recording it stores that batch again (ingest's points are deduplicated by series and time, its state
only moves forward).

The backlog is bounded: an appending process more than `max_lag_bytes` ahead of the writer's progress waits for it
(and gives up with `SpoolFull` after `wait_seconds`), so storage that falls behind slows the answers down instead
of piling up work.
"""

import contextlib
import fcntl
import heapq
import itertools
import logging
import operator
import os
import threading
import time
import uuid
from pathlib import Path

logger = logging.getLogger("netfleet.spool")

SEGMENT = ".spool"
LOCK = ".lock"
PROGRESS = ".progress"
WRITER_LOCK = "writer.lock"


class SpoolFull(Exception):
    """The writer is too far behind: the item was not accepted."""


class SpoolAppender:
    """A process's end of the spool: `append(line)` (bytes without a newline) writes it to the current segment, once
    the writer is less than `max_lag_bytes` behind this process (it reads the writer's progress file only when its
    own count says it may be behind)."""

    def __init__(self, directory, *, segment_bytes=1 << 20, max_lag_bytes=1 << 20, wait_seconds=10.0):
        self.directory = Path(directory)
        self.segment_bytes, self.max_lag_bytes, self.wait_seconds = segment_bytes, max_lag_bytes, wait_seconds
        self._lock = threading.Lock()
        self._pid = None

    def append(self, line):
        with self._lock:
            if self._pid != os.getpid():
                self._open()  # first use in this process (or after a fork)
            elif self._size >= self.segment_bytes:
                self._rotate()
            if self._appended - self._consumed > self.max_lag_bytes:
                self._wait_for_writer()
            os.write(self._fd, line + b"\n")
            self._size += len(line) + 1
            self._appended += len(line) + 1

    def _open(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._token = uuid.uuid4().hex[:16]
        self._lock_fd = os.open(self.directory / f"{self._token}{LOCK}", os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # held while this process lives
        self._sequence, self._fd, self._appended, self._consumed = 0, None, 0, 0
        self._starts = {}  # segment number -> bytes appended before it
        self._rotate()

    def _rotate(self):
        if self._fd is not None:
            os.close(self._fd)
        self._sequence += 1
        self._starts[self._sequence] = self._appended
        path = self.directory / f"{self._token}-{self._sequence:08d}{SEGMENT}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = 0

    def _wait_for_writer(self):
        deadline = time.monotonic() + self.wait_seconds
        while True:
            sequence, offset = read_progress(self.directory, self._token)
            self._consumed = self._starts.get(sequence, 0) + offset
            for passed in [number for number in self._starts if number < sequence]:
                del self._starts[passed]
            if self._appended - self._consumed <= self.max_lag_bytes:
                return
            if time.monotonic() > deadline:
                raise SpoolFull(f"the spool writer is {self._appended - self._consumed} bytes behind")
            time.sleep(0.002)


def read_progress(directory, token):
    """(segment number, offset) up to which the writer has stored a process's spool; (0, 0) before it started."""
    try:
        raw = (directory / f"{token}{PROGRESS}").read_bytes()
    except FileNotFoundError:
        return 0, 0
    sequence, _, offset = raw.partition(b" ")
    try:
        return int(sequence), int(offset)
    except ValueError:  # being written: read again
        return 0, 0


class SpoolReader:
    """The writer's end: `drain()` stores every complete line appended so far, in batches, and deletes the segments
    it is done with. `write_batch(lines)` stores a batch (raises on failure); `recover()` runs after a failure,
    before the next attempt (e.g. replacing a broken database connection). `order(line)` is a line's place in time:
    a batch takes the earliest lines of every process's spool, merged in that order, so items of the same source
    accepted by different processes are stored in the order they came."""

    def __init__(self, directory, *, write_batch, order=None, recover=None, unavailable=(), max_batch=64, attempts=3):
        self.directory = Path(directory)
        self._write_batch, self._order = write_batch, order or (lambda line: 0)
        self._recover = recover or (lambda: None)
        self.unavailable = tuple(unavailable)  # errors of the storage itself: nothing is dropped, drain stops
        self.max_batch, self.attempts = max_batch, attempts
        self._offsets = {}  # segment path -> bytes stored
        self._resumed = set()  # tokens whose progress file was read (a restarted writer continues from it)

    def hold_writer_lock(self):
        """Make this the host's only writer (two would store every line twice); returns the held lock's fd."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / WRITER_LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def drain(self):
        """Store what is spooled now; returns how many lines were stored."""
        total = 0
        while True:
            stored = self._drain_batch()
            total += stored
            if stored < self.max_batch:
                return total

    def _drain_batch(self):
        queues, closed, dead = [], [], []
        for token, paths in self._segments().items():
            alive = self._alive(token)
            if not alive:
                dead.append(token)
            if token not in self._resumed:
                self._resume(token, paths)
            queue = []
            for number, path in enumerate(paths):
                complete_end, torn = self._read(path, queue)
                if complete_end is not None and (number + 1 < len(paths) or not alive):  # it can grow no more
                    closed.append((path, complete_end, torn))
                if len(queue) >= self.max_batch:
                    break
            queues.append(queue)
        batch = list(itertools.islice(heapq.merge(*queues, key=operator.itemgetter(0)), self.max_batch))
        if batch:
            self._store([line for _, line, _, _ in batch])
            progress = {}
            for _, _, path, position in batch:
                self._offsets[path] = max(self._offsets.get(path, 0), position)
                token, number = _segment_name(path)
                progress[token] = max(progress.get(token, (0, 0)), (number, self._offsets[path]))
            for token, (number, offset) in progress.items():
                self._write_progress(token, number, offset)
        for path, complete_end, torn in closed:
            if self._offsets.get(path, 0) >= complete_end:
                if torn:
                    logger.warning("%s ends in an incomplete line (its process died writing it); skipped", path.name)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                self._offsets.pop(path, None)
        for token in dead:
            if not any(self.directory.glob(f"{token}-*{SEGMENT}")):
                for suffix in (PROGRESS, LOCK):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.directory / f"{token}{suffix}")
                self._resumed.discard(token)
        return len(batch)

    def _read(self, path, queue):
        """Queue the complete lines after what was stored, as (order, line, path, offset after it), until the queue
        holds a batch: a backlog is read a batch at a time, not whole at every batch. Returns the offset where the
        segment's complete lines end (None when it stopped before) and whether an incomplete line follows."""
        offset = self._offsets.get(path, 0)
        try:
            segment = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return offset, False
        with segment:
            segment.seek(offset)
            position = offset
            while len(queue) < self.max_batch:
                line = segment.readline()
                if not line.endswith(b"\n"):
                    return position, bool(line)  # the end (an incomplete line: its process died writing it)
                position += len(line)
                queue.append((self._order(line[:-1]), line[:-1], path, position))
            return (position, False) if not segment.read(1) else (None, False)

    def _resume(self, token, paths):
        """Continue a process's spool where the writer's progress file says it stopped (a restarted writer)."""
        self._resumed.add(token)
        stored_number, stored_offset = read_progress(self.directory, token)
        for path in paths:
            number = _segment_name(path)[1]
            if path not in self._offsets and number <= stored_number:
                self._offsets[path] = stored_offset if number == stored_number else path.stat().st_size

    def _write_progress(self, token, number, offset):
        fd = os.open(self.directory / f"{token}{PROGRESS}", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, b"%08d %012d" % (number, offset), 0)  # fixed width: one write replaces it whole
        finally:
            os.close(fd)

    def _segments(self):
        segments = {}
        for path in sorted(self.directory.glob(f"*{SEGMENT}")):
            segments.setdefault(path.name.split("-", 1)[0], []).append(path)
        return segments

    def _alive(self, token):
        try:
            fd = os.open(self.directory / f"{token}{LOCK}", os.O_WRONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing releases the lock if it was taken
        return False

    def _store(self, lines):
        """Store a batch; when it fails, each line alone (so one bad line cannot fail the others), retrying with a
        short backoff before giving up on it, logged. When the storage itself is unavailable (`unavailable`), the
        error goes up and nothing is dropped: the lines stay spooled and are stored once it is back."""
        try:
            self._write_batch(lines)
            return
        except self.unavailable:
            raise
        except Exception:
            logger.warning("spooled batch of %d failed; storing its lines one by one", len(lines), exc_info=True)
        for line in lines:
            for attempt in range(self.attempts):
                self._recover()
                try:
                    self._write_batch([line])
                    break
                except self.unavailable:
                    raise
                except Exception:
                    if attempt + 1 == self.attempts:
                        logger.exception("a spooled line could not be stored; dropped: %.200r", line)
                    else:
                        time.sleep(0.2 * 2**attempt)


def _segment_name(path):
    """(token, segment number) of a segment's path."""
    token, _, rest = path.name.partition("-")
    return token, int(rest[: -len(SEGMENT)])


def run_writer(reader, *, stop, idle_sleep=(0.02, 0.25), after_drain=None):
    """The writer's loop: drain, and when there was nothing, sleep — 20 ms at first, doubling while the spool stays
    empty, up to 250 ms (an idle writer costs next to nothing) — until `stop` (an Event) is set; then drain once
    more so a clean shutdown leaves nothing behind. `after_drain()` runs after each drain (housekeeping)."""
    lock = reader.hold_writer_lock()
    shortest, longest = idle_sleep
    pause = shortest
    try:
        while not stop.is_set():
            try:
                stored = reader.drain()
            except reader.unavailable:
                logger.warning("storage unavailable; the spool is kept and retried in %.1f s", longest, exc_info=True)
                stored = 0
                pause = longest
            if after_drain is not None:
                after_drain()
            if stored:
                pause = shortest
            else:
                stop.wait(pause)
                pause = min(pause * 2, longest)
        try:
            reader.drain()
        except reader.unavailable:
            logger.warning("storage unavailable at shutdown; the spool is kept for the next writer", exc_info=True)
    finally:
        os.close(lock)
