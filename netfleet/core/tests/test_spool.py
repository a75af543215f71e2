"""The spool: lines appended by accepting processes are stored in batches by the writer, segments are deleted once
stored and closed, the spool of a process that died (a real one, killed) is stored too, and the backlog is
bounded."""

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from netfleet.core.spool import SpoolAppender, SpoolFull, SpoolReader, run_writer


class Store:
    """A write_batch that records its batches and fails on `poison` lines."""

    def __init__(self, *, poison=()):
        self.batches, self.poison, self.attempts = [], set(poison), {}

    def __call__(self, lines):
        for line in lines:
            self.attempts[line] = self.attempts.get(line, 0) + 1
        if self.poison & set(lines):
            raise ValueError("cannot store")
        self.batches.append(list(lines))

    @property
    def lines(self):
        return [line for batch in self.batches for line in batch]


def names(directory):
    return sorted(path.name for path in Path(directory).iterdir())


def test_appended_lines_are_stored_in_batches_in_order(tmp_path):
    appender, store = SpoolAppender(tmp_path), Store()
    for n in range(10):
        appender.append(b"line-%d" % n)
    (segment,) = tmp_path.glob("*.spool")
    assert segment.read_bytes() == b"".join(b"line-%d\n" % n for n in range(10))  # on disk before it is stored
    reader = SpoolReader(tmp_path, write_batch=store, max_batch=4)
    assert reader.drain() == 10
    assert store.batches == [
        [b"line-0", b"line-1", b"line-2", b"line-3"],
        [b"line-4", b"line-5", b"line-6", b"line-7"],
        [b"line-8", b"line-9"],
    ]
    assert reader.drain() == 0  # nothing is stored twice
    appender.append(b"later")
    assert reader.drain() == 1 and store.lines[-1] == b"later"
    assert segment.exists()  # its process is alive and may append more


def test_a_segment_is_deleted_once_stored_and_its_process_moved_on(tmp_path):
    appender, store = SpoolAppender(tmp_path, segment_bytes=20), Store()
    for n in range(6):
        appender.append(b"item-%04d" % n)  # 10 bytes a line: a new segment every 2 lines
    assert len(list(tmp_path.glob("*.spool"))) == 3
    reader = SpoolReader(tmp_path, write_batch=store)
    assert reader.drain() == 6
    assert len(list(tmp_path.glob("*.spool"))) == 1  # the current one stays
    assert store.lines == [b"item-%04d" % n for n in range(6)]


def test_one_bad_line_does_not_fail_the_others(tmp_path, caplog):
    appender, store = SpoolAppender(tmp_path), Store(poison={b"bad"})
    for line in (b"a", b"bad", b"b"):
        appender.append(line)
    reader = SpoolReader(tmp_path, write_batch=store, attempts=2)
    assert reader.drain() == 3
    assert store.lines == [b"a", b"b"]
    assert store.attempts[b"bad"] == 3  # in the batch, then twice alone
    assert "could not be stored; dropped: b'bad'" in caplog.text


def test_the_backlog_is_bounded(tmp_path):
    appender = SpoolAppender(tmp_path, max_lag_bytes=4, wait_seconds=0.2)
    appender.append(b"1")
    appender.append(b"2")
    appender.append(b"3")  # 4 bytes behind: still within the bound
    with pytest.raises(SpoolFull):
        appender.append(b"4")  # 6 bytes behind: the writer has stored nothing
    SpoolReader(tmp_path, write_batch=Store()).drain()
    appender.append(b"4")  # room again


def test_a_waiting_process_goes_on_as_soon_as_the_writer_catches_up(tmp_path):
    appender, store = SpoolAppender(tmp_path, max_lag_bytes=4, wait_seconds=10), Store()
    for line in (b"1", b"2", b"3"):
        appender.append(line)
    stop = threading.Event()
    writer = threading.Thread(
        target=run_writer, args=(SpoolReader(tmp_path, write_batch=store),), kwargs={"stop": stop}
    )
    appended = threading.Event()
    sender = threading.Thread(target=lambda: (appender.append(b"4"), appended.set()))
    sender.start()
    assert not appended.wait(0.2)  # waits for the writer
    writer.start()
    assert appended.wait(10)
    stop.set()
    writer.join(10)
    sender.join(10)
    assert store.lines == [b"1", b"2", b"3", b"4"]


def test_a_restarted_writer_continues_where_it_stopped(tmp_path):
    appender, store = SpoolAppender(tmp_path, segment_bytes=8), Store()
    for n in range(5):
        appender.append(b"%d" % n)
    SpoolReader(tmp_path, write_batch=store).drain()
    for n in range(5, 12):
        appender.append(b"%d" % n)
    SpoolReader(tmp_path, write_batch=store).drain()  # a new writer: only what the first one had not stored
    assert store.lines == [b"%d" % n for n in range(12)]


KILLED = textwrap.dedent(
    """
    import sys, time
    from netfleet.core.spool import SpoolAppender

    appender = SpoolAppender(sys.argv[1], segment_bytes=300)
    for n in range(100):
        appender.append(b"doc-%d" % n)
    print("accepted", flush=True)
    time.sleep(60)
    """
)


def test_what_a_killed_process_accepted_is_stored_and_its_spool_removed(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(tmp_path)], stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[3]
    )
    try:
        assert process.stdout.readline().strip() == b"accepted"
        store = Store()
        reader = SpoolReader(tmp_path, write_batch=store)
        reader.drain()  # alive: its closed segments are stored and removed, its current one kept
        assert len(list(tmp_path.glob("*.spool"))) == 1
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    (tmp_path / f"{next(tmp_path.glob('*.lock')).stem}-99999999.spool").write_bytes(b"doc-100\ndoc-10")  # torn
    reader.drain()
    assert sorted(store.lines) == sorted([b"doc-%d" % n for n in range(101)])
    assert names(tmp_path) == []  # its segments, progress and lock files are gone


def test_the_writer_loop_drains_until_stopped_and_once_more(tmp_path):
    appender, store = SpoolAppender(tmp_path), Store()
    stop = threading.Event()
    reader = SpoolReader(tmp_path, write_batch=store)
    writer = threading.Thread(target=run_writer, args=(reader,), kwargs={"stop": stop})
    writer.start()
    for n in range(50):
        appender.append(b"%d" % n)
    stop.set()
    writer.join(10)
    assert not writer.is_alive()
    assert store.lines == [b"%d" % n for n in range(50)]


def test_a_batch_merges_the_processes_spools_in_order(tmp_path):
    first, second, store = SpoolAppender(tmp_path), SpoolAppender(tmp_path), Store()
    for moment in (1, 4, 5):
        first.append(b"%d first" % moment)
    for moment in (2, 3, 6):
        second.append(b"%d second" % moment)
    reader = SpoolReader(tmp_path, write_batch=store, order=lambda line: int(line.split()[0]), max_batch=4)
    assert reader.drain() == 6
    assert store.batches == [[b"1 first", b"2 second", b"3 second", b"4 first"], [b"5 first", b"6 second"]]


class Down(Exception):
    """The storage is unavailable."""


def test_nothing_is_dropped_while_the_storage_is_unavailable(tmp_path, caplog):
    appender, store = SpoolAppender(tmp_path), Store()
    outages = iter([True, True, True])

    def flaky(lines):
        if next(outages, False):
            raise Down("database down")
        store(lines)

    for n in range(5):
        appender.append(b"%d" % n)
    reader = SpoolReader(tmp_path, write_batch=flaky, unavailable=(Down,))
    with pytest.raises(Down):
        reader.drain()
    stop = threading.Event()
    writer = threading.Thread(target=run_writer, args=(reader,), kwargs={"stop": stop, "idle_sleep": (0.01, 0.02)})
    writer.start()
    deadline = time.monotonic() + 10
    while len(store.lines) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    writer.join(10)
    assert store.lines == [b"%d" % n for n in range(5)]  # once it is back, every line, in order
    assert "storage unavailable; the spool is kept" in caplog.text
