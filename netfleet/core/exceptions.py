"""Typed domain failures. Services raise these; the API exception handler turns them into the error envelope."""


class NetfleetError(Exception):
    """Base of netfleet's domain errors: a message for the caller and the HTTP status that fits it."""

    status_code = 400
    default_message = "Invalid request"
    retry_after = None  # seconds: the answer says when to try again (Retry-After)

    def __init__(self, message=None, *, details=None):
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    @property
    def headers(self):
        """Headers the answer carries besides the error envelope."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class Conflict(NetfleetError):
    status_code = 409
    default_message = "Conflict"


class Locked(NetfleetError):
    status_code = 423
    default_message = "Locked"


class UpstreamUnreachable(NetfleetError):
    status_code = 502
    default_message = "The device could not be reached"


class UpstreamTimeout(NetfleetError):
    status_code = 504
    default_message = "The device did not answer in time"


class Unavailable(NetfleetError):
    status_code = 503
    default_message = "Temporarily unavailable; retry later"
    retry_after = 10
