"""Group commit: concurrent calls from a process's threads share one write.

A request thread submits its item and waits; the first thread to take the writer lock writes every item queued
so far in one batch (one transaction) and hands each submitter its own result or error. Nothing is answered
before its item is written, so a crash loses nothing that was acknowledged, and the queue cannot grow beyond the
requests in flight (storage that falls behind slows the answers down instead of piling up work). One thread
alone writes its own item at once: there is no timer and no background thread.
"""

import threading


class _Ticket:
    __slots__ = ("item", "done", "result", "error")

    def __init__(self, item):
        self.item = item
        self.done = False
        self.result = None
        self.error = None


class GroupCommit:
    """`write_batch(items) -> [result per item]` runs under the writer lock. When a batch of several items fails,
    each is retried alone so one bad item cannot fail the others."""

    def __init__(self, write_batch, *, max_batch=256):
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._queue = []
        self._queue_lock = threading.Lock()
        self._writer = threading.Lock()

    def submit(self, item):
        ticket = _Ticket(item)
        with self._queue_lock:
            self._queue.append(ticket)
        while not ticket.done:
            with self._writer:
                if ticket.done:
                    break
                with self._queue_lock:
                    batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                try:
                    self._run(batch)
                except BaseException as exc:  # e.g. a timeout signal: no submitter may wait forever
                    for other in batch:
                        if not other.done:
                            self._finish(other, error=exc)
                    raise
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def _run(self, batch):
        try:
            results = self._write_batch([ticket.item for ticket in batch])
        except Exception as exc:
            if len(batch) == 1:
                self._finish(batch[0], error=exc)
                return
            for ticket in batch:
                self._run([ticket])
            return
        for ticket, result in zip(batch, results, strict=True):
            self._finish(ticket, result=result)

    @staticmethod
    def _finish(ticket, *, result=None, error=None):
        ticket.result, ticket.error, ticket.done = result, error, True
