"""The spooled writer: items are stored in batches by a writer thread, backpressure bounds the backlog, and the
spool of a process that died (a real one, killed) is stored by the next writer."""

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from netfleet.core.spool import SpooledWriter


class Store:
    """A write_batch that records the batches it got; `gate` (when set) holds every batch until opened."""

    def __init__(self, *, poison=(), gate=None):
        self.batches, self.poison, self.gate = [], set(poison), gate
        self.attempts = {}

    def __call__(self, items):
        if self.gate is not None:
            self.gate.wait(10)
        for item in items:
            self.attempts[item] = self.attempts.get(item, 0) + 1
        if self.poison & set(items):
            raise ValueError("cannot store")
        self.batches.append(list(items))

    @property
    def items(self):
        return [item for batch in self.batches for item in batch]


def writer(directory, store, **options):
    return SpooledWriter(directory, write_batch=store, encode=str.encode, decode=bytes.decode, **options)


def spool_files(directory):
    return sorted(path.name for path in Path(directory).iterdir())


def test_items_are_stored_in_batches_in_order(tmp_path):
    gate = threading.Event()
    store = Store(gate=gate)
    spooled = writer(tmp_path, store)
    for n in range(50):
        spooled.submit(f"item-{n}")
    assert spooled.backlog == 50
    gate.set()
    assert spooled.flush(timeout=10)
    assert spooled.backlog == 0
    assert store.items == [f"item-{n}" for n in range(50)]
    assert len(store.batches) < 50  # the first batch held the writer while the rest queued up behind it
    spooled.stop()
    assert spool_files(tmp_path) == []  # everything stored: no spool left behind


def test_a_submitted_item_is_in_the_spool_file_before_it_is_stored(tmp_path):
    gate = threading.Event()
    spooled = writer(tmp_path, Store(gate=gate))
    spooled.submit("first")
    spooled.submit("second")
    (segment,) = tmp_path.glob("*.spool")
    assert segment.read_bytes() == b"first\nsecond\n"
    gate.set()
    spooled.flush(timeout=10)
    spooled.stop()


def test_submitters_wait_when_the_writer_is_max_pending_behind(tmp_path):
    gate = threading.Event()
    store = Store(gate=gate)
    spooled = writer(tmp_path, store, max_pending=3)
    for n in range(4):  # the writer takes the first into its (held) batch, three wait in the queue
        spooled.submit(str(n))
        time.sleep(0.05)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (spooled.submit("99"), done.set()))
    thread.start()
    assert not done.wait(0.3)  # no room: the answer waits for the writer
    gate.set()
    assert done.wait(10)
    thread.join()
    assert spooled.flush(timeout=10)
    assert sorted(store.items) == ["0", "1", "2", "3", "99"]
    spooled.stop()


def test_one_bad_item_does_not_fail_the_others(tmp_path, caplog):
    gate = threading.Event()
    store = Store(poison={"bad"}, gate=gate)
    spooled = writer(tmp_path, store, attempts=2)
    for item in ["a", "bad", "b"]:
        spooled.submit(item)
    gate.set()
    assert spooled.flush(timeout=10)
    assert sorted(store.items) == ["a", "b"]
    assert store.attempts["bad"] >= 2  # retried alone before it was given up
    assert "could not be stored; dropped: 'bad'" in caplog.text
    spooled.stop()


def test_segments_are_deleted_once_stored(tmp_path):
    spooled = writer(tmp_path, Store(), segment_bytes=16)
    for n in range(40):
        spooled.submit(f"item-{n:04d}")
    spooled.flush(timeout=10)
    spool_segments = [name for name in spool_files(tmp_path) if name.endswith(".spool")]
    assert len(spool_segments) <= 2  # the current segment, and one whose last item is being finished
    spooled.stop()
    assert spool_files(tmp_path) == []


def test_an_orphaned_spool_is_replayed_and_a_live_one_is_not(tmp_path):
    (tmp_path / "dead.lock").touch()
    (tmp_path / "dead-00000001.spool").write_bytes(b"one\ntwo\n")
    (tmp_path / "dead-00000002.spool").write_bytes(b"three\nhalf-writ")  # died in the middle of a line
    alive = os.open(tmp_path / "alive.lock", os.O_WRONLY | os.O_CREAT)
    fcntl.flock(alive, fcntl.LOCK_EX)
    (tmp_path / "alive-00000001.spool").write_bytes(b"not mine\n")
    store = Store()
    spooled = writer(tmp_path, store)
    spooled.submit("new")
    assert spooled.flush(timeout=10)
    assert store.items == ["one", "two", "three", "new"]  # orphans first (oldest segment first), then live items
    spooled.stop()
    os.close(alive)
    assert spool_files(tmp_path) == ["alive-00000001.spool", "alive.lock"]


KILLED = textwrap.dedent(
    """
    import sys, threading
    from netfleet.core.spool import SpooledWriter

    never = threading.Event()
    spooled = SpooledWriter(sys.argv[1], write_batch=lambda items: never.wait(), encode=str.encode,
                            decode=bytes.decode)
    for n in range(100):
        spooled.submit(f"doc-{n}")
    print("accepted", flush=True)
    never.wait()
    """
)


def test_what_a_killed_process_accepted_is_stored_by_the_next_writer(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert process.stdout.readline().strip() == b"accepted"  # 100 items answered, none stored
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    store = Store()
    spooled = writer(tmp_path, store)
    spooled.submit("after")
    deadline = time.monotonic() + 10
    while len(store.items) < 101 and time.monotonic() < deadline:
        time.sleep(0.05)
    spooled.stop()
    assert sorted(store.items) == sorted(["after", *(f"doc-{n}" for n in range(100))])
    assert spool_files(tmp_path) == []


def test_flush_times_out_while_the_writer_is_busy(tmp_path):
    gate = threading.Event()
    spooled = writer(tmp_path, Store(gate=gate))
    spooled.submit("slow")
    assert spooled.flush(timeout=0.2) is False
    gate.set()
    assert spooled.flush(timeout=10) is True
    spooled.stop()
