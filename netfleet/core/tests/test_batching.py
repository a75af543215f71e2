"""Group commit: concurrent submissions share one write, each submitter gets its own outcome."""

import threading

import pytest

from netfleet.core.batching import GroupCommit


class Recorder:
    """A write_batch that blocks its first call until released, so later submitters queue behind it."""

    def __init__(self):
        self.batches = []
        self.first_started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items):
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.first_started.set()
            assert self.release.wait(10)
        if "bad" in items:
            raise ValueError("bad item")
        return [f"stored {item}" for item in items]


def submit_in_threads(commit, items):
    outcomes = {}

    def run(item):
        try:
            outcomes[item] = commit.submit(item)
        except ValueError as exc:
            outcomes[item] = exc

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    return threads, outcomes


def wait_queued(commit, count):
    for _ in range(1000):
        if len(commit._queue) == count:
            return
        threading.Event().wait(0.005)
    pytest.fail(f"{count} submissions never queued")


def test_a_lone_submission_is_written_at_once():
    written = []
    commit = GroupCommit(lambda items: written.append(items) or [len(items)])
    assert commit.submit("a") == 1
    assert written == [["a"]]


def test_submissions_arriving_during_a_write_share_the_next_batch():
    recorder = Recorder()
    commit = GroupCommit(recorder)
    first, first_outcome = submit_in_threads(commit, ["first"])
    assert recorder.first_started.wait(10)
    others, outcomes = submit_in_threads(commit, [f"doc-{n}" for n in range(5)])
    wait_queued(commit, 5)
    recorder.release.set()
    for thread in first + others:
        thread.join(10)
    assert first_outcome == {"first": "stored first"}
    assert outcomes == {f"doc-{n}": f"stored doc-{n}" for n in range(5)}
    assert len(recorder.batches) == 2 and sorted(recorder.batches[1]) == [f"doc-{n}" for n in range(5)]


def test_a_failing_item_fails_only_its_submitter():
    recorder = Recorder()
    commit = GroupCommit(recorder)
    first, _ = submit_in_threads(commit, ["first"])
    assert recorder.first_started.wait(10)
    others, outcomes = submit_in_threads(commit, ["good-1", "bad", "good-2"])
    wait_queued(commit, 3)
    recorder.release.set()
    for thread in first + others:
        thread.join(10)
    assert isinstance(outcomes["bad"], ValueError)
    assert outcomes["good-1"] == "stored good-1" and outcomes["good-2"] == "stored good-2"
    # the batch of three failed, then each item was written alone
    assert sorted(map(tuple, recorder.batches[2:])) == [("bad",), ("good-1",), ("good-2",)]


def test_batches_are_capped():
    recorder = Recorder()
    commit = GroupCommit(recorder, max_batch=2)
    first, _ = submit_in_threads(commit, ["first"])
    assert recorder.first_started.wait(10)
    others, outcomes = submit_in_threads(commit, ["a", "b", "c", "d", "e"])
    wait_queued(commit, 5)
    recorder.release.set()
    for thread in first + others:
        thread.join(10)
    assert len(outcomes) == 5 and all(value.startswith("stored") for value in outcomes.values())
    assert all(len(batch) <= 2 for batch in recorder.batches)
