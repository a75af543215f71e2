"""Gateway operations: connection tests, command execution and device information over the vendor API."""

import logging
import re

from django.utils import timezone

from netfleet.core.exceptions import NetfleetError, UpstreamTimeout, UpstreamUnreachable

from . import routeros
from .choices import GatewayVendor
from .models import Gateway

logger = logging.getLogger("netfleet.gateways")

# Console verbs are POSTed in RouterOS REST whatever method the caller named (routers-api.txt documents
# `PUT ip/hotspot/set` and `DELETE ip/hotspot/remove`).
CONSOLE_VERBS = ("add", "set", "remove", "print", "enable", "disable", "unset", "get")
UPTIME_RE = re.compile(r"(\d+)(w|d|h|ms|m|s|us|ns)")
UPTIME_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0, "us": 0, "ns": 0}


class UnsupportedVendor(NetfleetError):
    status_code = 400
    default_message = "This gateway's vendor has no management adapter yet"


def client_for(gateway):
    if gateway.vendor != GatewayVendor.MIKROTIK:
        raise UnsupportedVendor(f"No management adapter for {gateway.get_vendor_display()} yet")
    return routeros.client_for(gateway)


def delete_gateway(*, gateway):
    pk = gateway.pk
    gateway.delete()
    routeros.forget_client(pk)


def _record_status(gateway, *, online, error=""):
    gateway.is_online, gateway.last_checked, gateway.last_error = online, timezone.now(), error[:1024]
    Gateway.objects.filter(pk=gateway.pk).update(
        is_online=gateway.is_online, last_checked=gateway.last_checked, last_error=gateway.last_error
    )


def test_connection(*, gateway):
    """Ask the router for its identity and record `is_online`/`last_checked`/`last_error`.

    A refused connection, bad credentials or a router error leave the gateway offline and return normally; a
    timeout is recorded the same way and then raised (UpstreamTimeout, 504), since nothing is known for sure.
    """
    try:
        client_for(gateway).singleton("system/identity")
    except UpstreamTimeout as exc:
        _record_status(gateway, online=False, error=exc.message)
        raise
    except (UpstreamUnreachable, routeros.RouterOSError, UnsupportedVendor) as exc:
        _record_status(gateway, online=False, error=exc.message)
        return gateway
    _record_status(gateway, online=True)
    return gateway


def _rest_call(command, method):
    """(HTTP method, path) RouterOS REST expects for a console command named with a caller's method."""
    verb = command.rsplit("/", 1)[-1]
    if verb in CONSOLE_VERBS and not (method == "GET" and verb == "get"):
        return "POST", command
    return method, command


def execute_command(*, gateway, command, method="GET", params=None, data=None):
    """Run one RouterOS REST call and return the router's reply. `params` are GET filters (a leading `?` as in
    the API protocol's `?name=x` is accepted), `data` the JSON body. RouterOSError carries the router's text."""
    command = routeros.clean_command_path(command)
    method = method.upper()
    http_method, path = _rest_call(command, method)
    query = {str(key).lstrip("?="): routeros_value(value) for key, value in (params or {}).items()}
    body = data if http_method in ("POST", "PUT", "PATCH") else None
    if http_method == "POST" and body is None:
        body = {}
    return client_for(gateway).request(http_method, path, params=query, json=body)


def routeros_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(routeros_value(item) for item in value)
    return "" if value is None else str(value)


def format_uptime(value):
    """RouterOS "1w2d15h30m45s" -> "9d 15:30:45" (days always shown; sub-second parts dropped)."""
    seconds = sum(int(amount) * UPTIME_UNITS[unit] for amount, unit in UPTIME_RE.findall(value or ""))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d {hours:02d}:{minutes:02d}:{secs:02d}"


def _number(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def device_info(*, gateway):
    """Identity, CPU load, memory, disk, version and uptime from `system/resource` and `system/identity`."""
    client = client_for(gateway)
    resource = client.singleton("system/resource")
    identity = client.singleton("system/identity")
    cpu_load = _number(resource.get("cpu-load"))
    version = str(resource.get("version") or "")
    return {
        "identity": identity.get("name", ""),
        "cpu_load": f"{cpu_load}%" if cpu_load is not None else "",
        "free_memory": str(resource.get("free-memory", "")),
        "total_memory": str(resource.get("total-memory", "")),
        "free_hdd_space": str(resource.get("free-hdd-space", "")),
        "total_hdd_space": str(resource.get("total-hdd-space", "")),
        "version": version.split(" ", 1)[0],
        "uptime": format_uptime(resource.get("uptime")),
    }
