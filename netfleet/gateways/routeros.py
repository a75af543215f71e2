"""RouterOS v7 REST client (`/rest`), on httpx with HTTP Basic.

RouterOS semantics: GET reads a menu or one item, PUT creates, PATCH sets, DELETE removes and POST runs a console
command (`…/add`, `…/set`, `…/print` with `.proplist`/`.query`). Every value in a reply is a string. Errors are
`{"error": <status>, "message": ..., "detail": ...}`; they become `RouterOSError` with the router's text.
Connection failures become `UpstreamUnreachable` (502), timeouts `UpstreamTimeout` (504).

One `httpx.Client` (and its keep-alive connections) is reused per gateway; it is replaced when the gateway's
address, credentials, TLS options or the timeouts change. Credentials are never logged.
"""

import hashlib
import logging
import re
import ssl
import threading
from collections import OrderedDict

import httpx
from django.conf import settings

from netfleet.core.exceptions import NetfleetError, UpstreamTimeout, UpstreamUnreachable

logger = logging.getLogger("netfleet.gateways.routeros")

COMMAND_PATH_RE = re.compile(r"^[A-Za-z0-9_./*@-]+$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class RouterOSError(NetfleetError):
    """The router answered with an error: its message and detail, and the HTTP status it used."""

    status_code = 400
    default_message = "The router refused the request"

    def __init__(self, message=None, *, router_status=None, details=None):
        super().__init__(message, details=details)
        self.router_status = router_status


class InvalidCommandPath(NetfleetError):
    status_code = 400
    default_message = "Invalid command path"


def clean_command_path(path):
    """A console path such as `ip/hotspot/user` or `/ip/address/*1`, without leading/trailing slashes.
    Refuses anything that could leave `/rest` (`..`, other characters than RouterOS paths use)."""
    if not isinstance(path, str):
        raise InvalidCommandPath("The command must be a string such as ip/address")
    stripped = path.strip().strip("/")
    if not stripped:
        raise InvalidCommandPath("The command is empty")
    if ".." in stripped:
        raise InvalidCommandPath("The command may not contain '..'")
    if not COMMAND_PATH_RE.match(stripped):
        raise InvalidCommandPath("The command may contain only letters, digits and _ . / * @ -")
    return stripped


def routeros_error_message(response):
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("message" in body or "detail" in body):
        message, detail = body.get("message") or response.reason_phrase, body.get("detail")
        return f"{message}: {detail}" if detail else str(message)
    return f"{response.status_code} {response.reason_phrase}".strip()


def _timeouts():
    connect = settings.NETFLEET_GATEWAYS_CONNECT_TIMEOUT
    read = settings.NETFLEET_GATEWAYS_READ_TIMEOUT
    return httpx.Timeout(read, connect=connect, pool=connect)


def _verify(gateway):
    if not gateway.use_https:
        return True
    if not gateway.verify_tls:
        return False
    if gateway.ca_bundle:
        context = ssl.create_default_context()
        context.load_verify_locations(cadata=gateway.ca_bundle)
        return context
    return True


class RouterOSClient:
    """One router's REST API. Build it with `client_for(gateway)` to reuse its connections."""

    def __init__(self, *, base_url, username, password, verify=True, timeout=None, label=""):
        self.label = label or base_url
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/rest/",
            auth=httpx.BasicAuth(username, password),
            verify=verify,
            timeout=timeout or _timeouts(),
            headers={"Accept": "application/json"},
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
        )

    def close(self):
        self._http.close()

    # --- transport ---------------------------------------------------------------------------------------------

    def request(self, method, path, *, params=None, json=None):
        """One REST call; the decoded JSON reply (None for an empty one)."""
        method = method.upper()
        if method not in METHODS:
            raise InvalidCommandPath(f"Unsupported method {method}; use one of {', '.join(METHODS)}")
        path = clean_command_path(path)
        try:
            response = self._http.request(method, path, params=params or None, json=json)
        except httpx.TimeoutException:
            logger.warning("routeros timeout", extra={"router": self.label, "method": method, "path": path})
            raise UpstreamTimeout(f"The router at {self.label} did not answer in time") from None
        except (httpx.TransportError, ssl.SSLError) as exc:
            logger.warning(
                "routeros unreachable", extra={"router": self.label, "path": path, "reason": type(exc).__name__}
            )
            raise UpstreamUnreachable(f"The router at {self.label} could not be reached ({_reason(exc)})") from None
        logger.debug("routeros %s %s -> %s", method, path, response.status_code)
        if response.status_code >= 400:
            raise RouterOSError(routeros_error_message(response), router_status=response.status_code)
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise RouterOSError("The router answered with something other than JSON (is /rest enabled?)") from None

    # --- RouterOS verbs -----------------------------------------------------------------------------------------

    def get(self, path, *, proplist=None, **filters):
        params = {key.replace("_", "-"): value for key, value in filters.items()}
        if proplist:
            params[".proplist"] = ",".join(proplist)
        return self.request("GET", path, params=params)

    def singleton(self, path):
        """A singleton menu (`system/resource`): routers answer an object or a one-element list."""
        reply = self.request("GET", path)
        if isinstance(reply, list):
            return reply[0] if reply else {}
        return reply or {}

    def print(self, path, *, proplist=None, query=None):
        body = {}
        if proplist:
            body[".proplist"] = list(proplist)
        if query:
            body[".query"] = list(query)
        return self.request("POST", f"{path}/print", json=body)

    def create(self, path, data):
        """PUT: the new item, with its `.id`."""
        return self.request("PUT", path, json=data)

    def update(self, path, item_id, data):
        """PATCH `path/*ID`; a router that refuses the id form gets `POST path/set` with `.id`."""
        try:
            return self.request("PATCH", f"{path}/{item_id}", json=data)
        except RouterOSError as exc:
            if not _refuses_id_path(exc):
                raise
        self.request("POST", f"{path}/set", json={".id": item_id, **data})
        return self.request("POST", f"{path}/print", json={".query": [f".id={item_id}"]})[0]

    def remove(self, path, item_id):
        """DELETE `path/*ID`; a router that refuses the id form gets `POST path/remove` with `.id`."""
        try:
            return self.request("DELETE", f"{path}/{item_id}")
        except RouterOSError as exc:
            if not _refuses_id_path(exc):
                raise
        return self.request("POST", f"{path}/remove", json={".id": item_id})

    def run(self, command, data=None):
        """POST: a console command (`interface/monitor-traffic`, `ip/address/add`...)."""
        return self.request("POST", command, json=data or {})


def _refuses_id_path(exc):
    return exc.router_status in (405, 501) or (
        exc.router_status == 400 and "no such command or directory (*" in exc.message
    )


def _reason(exc):
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or no route"
    if isinstance(exc, ssl.SSLError | httpx.ProxyError):
        return "TLS error"
    return type(exc).__name__


# --- connection reuse per gateway ----------------------------------------------------------------------------------

_clients: "OrderedDict[object, tuple[str, RouterOSClient]]" = OrderedDict()
_clients_lock = threading.Lock()


def _fingerprint(gateway, timeout):
    digest = hashlib.sha256()
    for part in (
        gateway.base_url, gateway.username, gateway.password or "", str(gateway.verify_tls), gateway.ca_bundle or "",
        repr(timeout),
    ):  # fmt: skip
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def client_for(gateway):
    """The gateway's client, reused across requests while its settings stay the same."""
    timeout = _timeouts()
    fingerprint = _fingerprint(gateway, timeout)
    with _clients_lock:
        cached = _clients.get(gateway.pk)
        if cached is not None and cached[0] == fingerprint:
            _clients.move_to_end(gateway.pk)
            return cached[1]
        if cached is not None:
            cached[1].close()
        client = RouterOSClient(
            base_url=gateway.base_url, username=gateway.username, password=gateway.password or "",
            verify=_verify(gateway), timeout=timeout, label=f"{gateway.host}:{gateway.port}",
        )  # fmt: skip
        _clients[gateway.pk] = (fingerprint, client)
        while len(_clients) > settings.NETFLEET_GATEWAYS_MAX_CLIENTS:
            _, (_, oldest) = _clients.popitem(last=False)
            oldest.close()
        return client


def forget_client(gateway_pk):
    """Close a deleted gateway's connections."""
    with _clients_lock:
        cached = _clients.pop(gateway_pk, None)
    if cached is not None:
        cached[1].close()
