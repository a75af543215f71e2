"""Connectors: how netfleet logs in to a device. Each validates its credentials' parameters, builds a `Target`,
opens sessions (`run`, `upload`) and probes a device (`probe(target)`: log in and run a no-op, returning the host
key presented).

A session is used from asyncio code only and never touches the database: services build a `Target` from the
rows first and store the outcome afterwards.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError


class ConnectionFailed(Exception):
    """The device could not be used; `reason` is what operators read in `failure_reason`."""

    transient = False

    def __init__(self, reason):
        self.reason = reason
        super().__init__(reason)


class DeviceUnreachable(ConnectionFailed):
    """Refused, timed out, network down: worth retrying later."""

    transient = True


class AuthenticationFailed(ConnectionFailed):
    pass


class HostKeyMismatch(ConnectionFailed):
    pass


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    username: str
    password: str = ""
    private_key: str = ""
    host_key: str = ""  # trusted key (OpenSSH format); empty: trust on first use
    connect_timeout: float = 10
    exec_timeout: float = 60


@dataclass
class ExecResult:
    exit_code: int | None
    output: str
    truncated: bool = False
    timed_out: bool = False


def get_connector(name):
    from .ssh import SshConnector

    connectors = {"ssh": SshConnector}
    if name not in connectors:
        raise ValidationError({"connector": f"Unknown connector {name!r}."})
    return connectors[name]
