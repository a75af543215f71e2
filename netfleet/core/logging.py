"""Request-scoped logging context: every log line carries the id of the request that produced it."""

import contextvars
import logging

current_request_id = contextvars.ContextVar("netfleet_request_id", default=None)


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return True
