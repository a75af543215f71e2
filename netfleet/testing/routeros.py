"""A RouterOS v7 REST API simulator on loopback, written from MikroTik's REST API documentation.

It answers under `/rest/` as a router does: HTTP Basic authentication, every value a string, item ids `*N`
(hexadecimal), `GET` to read a menu or one item (`.proplist` and equality filters in the query string), `PUT`
to create, `PATCH` to change, `DELETE` to remove, and `POST` to run a console command (`add`, `set`, `remove`,
`print` with `.proplist` and `.query`, `enable`, `disable`). Errors answer `{"error": <code>, "message": ...,
"detail": ...}` with the HTTP status in `error`.

Menus: `system/resource` and `system/identity` (singletons), `ip/address`, `ip/pool`, `ip/hotspot`,
`ip/hotspot/user`, `ip/hotspot/user/profile` and `ip/hotspot/active` (read-only; sessions are added with
`add_active_session()`). Knobs for tests: `delay` (seconds before every answer, a slow router) and
`accept_id_paths` (False: refuse `/menu/*ID` paths, as some routers behind proxies do, so clients must fall back
to `POST …/set` and `…/remove` with `.id`).

    with RouterOSSimulator(username="admin", password="secret") as router:
        httpx.get(f"{router.url}/rest/system/resource", auth=("admin", "secret"))

`netfleet simulate routeros --port 8728` runs one in the foreground.
"""

import base64
import binascii
import contextlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

COMMAND_WORDS = ("add", "set", "remove", "print", "enable", "disable", "get")


class RouterOSFailure(Exception):
    def __init__(self, status, message, detail=None):
        super().__init__(detail or message)
        self.status, self.message, self.detail = status, message, detail


def bad_request(detail):
    return RouterOSFailure(400, "Bad Request", detail)


NOT_FOUND = (404, "Not Found")


@dataclass
class Menu:
    """One RouterOS menu: its properties, defaults, required properties and items (id -> dict of strings)."""

    path: str
    properties: tuple
    defaults: dict = field(default_factory=dict)
    required: tuple = ()
    unique_name: bool = True
    writable: bool = True
    items: dict = field(default_factory=dict)
    next_id: int = 1

    def new_id(self):
        item_id = f"*{self.next_id:X}"
        self.next_id += 1
        return item_id

    def find_name(self, name, exclude=None):
        return next((i for i, item in self.items.items() if item.get("name") == name and i != exclude), None)


def as_routeros_value(value):
    """RouterOS answers every value as a string; booleans are "true"/"false"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(as_routeros_value(v) for v in value)
    return str(value)


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _compare(item, key, op, value):
    current = item.get(key)
    if current is None:
        return False
    left, right = _number(current), _number(value)
    if left is None or right is None:
        left, right = current, value
    return left < right if op == "<" else left > right


def compile_query(words):
    """RouterOS `.query` words (a stack machine): `name=value`, `name` (has), `-name` (has not), `name<v`,
    `name>v`, and the operators `#|` (or), `#&` (and), `#!` (not) on the top of the stack. All left: and."""
    stack = []
    for word in words:
        if not isinstance(word, str) or not word:
            raise bad_request("invalid query")
        if word.startswith("#"):
            op = word[1:2]
            if op == "!" and stack:
                top = stack.pop()
                stack.append(lambda item, top=top: not top(item))
            elif op in ("|", "&") and len(stack) >= 2:
                right, left = stack.pop(), stack.pop()
                if op == "|":
                    stack.append(lambda item, a=left, b=right: a(item) or b(item))
                else:
                    stack.append(lambda item, a=left, b=right: a(item) and b(item))
            else:
                raise bad_request(f"invalid query operator {word}")
            continue
        match = re.match(r"^([^=<>]+)([=<>])(.*)$", word)
        if match:
            key, op, value = match.groups()
            if op == "=":
                stack.append(lambda item, k=key, v=value: item.get(k) == v)
            else:
                stack.append(lambda item, k=key, o=op, v=value: _compare(item, k, o, v))
        elif word.startswith("-"):
            stack.append(lambda item, k=word[1:]: k not in item)
        else:
            stack.append(lambda item, k=word: k in item)
    return lambda item: all(predicate(item) for predicate in stack)


def project(item, proplist):
    if not proplist:
        return dict(item)
    names = proplist.split(",") if isinstance(proplist, str) else list(proplist)
    return {name: item[name] for name in names if name in item}


class RouterOSState:
    """The router's configuration, shared by the server threads under one lock."""

    def __init__(self, *, identity="MikroTik", version="7.14.3 (stable)", uptime="2d15h30m45s"):
        self.lock = threading.RLock()
        self.identity = identity
        self.resource = {
            "uptime": uptime,
            "version": version,
            "build-time": "2024-04-17 12:47:58",
            "factory-software": "7.1",
            "free-memory": "52428800",
            "total-memory": "134217728",
            "cpu": "MIPS 24Kc V7.4",
            "cpu-count": "1",
            "cpu-frequency": "650",
            "cpu-load": "5",
            "free-hdd-space": "1073741824",
            "total-hdd-space": "2147483648",
            "write-sect-since-reboot": "1024",
            "write-sect-total": "65536",
            "architecture-name": "mipsbe",
            "board-name": "hAP ac",
            "platform": "MikroTik",
        }
        hotspot_user_props = (
            "name", "password", "profile", "server", "limit-uptime", "limit-bytes-total", "limit-bytes-in",
            "limit-bytes-out", "comment", "disabled", "email", "mac-address", "address", "routes",
        )  # fmt: skip
        profile_props = (
            "name", "rate-limit", "session-timeout", "shared-users", "idle-timeout", "keepalive-timeout",
            "status-autorefresh", "address-pool", "transparent-proxy", "add-mac-cookie", "mac-cookie-timeout",
            "open-status-page", "parent-queue", "on-login", "on-logout", "comment",
        )  # fmt: skip
        self.menus = {
            menu.path: menu
            for menu in (
                Menu(
                    "ip/address",
                    ("address", "interface", "network", "comment", "disabled"),
                    defaults={"disabled": "false", "dynamic": "false", "invalid": "false"},
                    required=("address", "interface"),
                    unique_name=False,
                ),
                Menu("ip/pool", ("name", "ranges", "next-pool", "comment"), required=("name", "ranges")),
                Menu(
                    "ip/hotspot",
                    (
                        "name",
                        "interface",
                        "address-pool",
                        "profile",
                        "idle-timeout",
                        "keepalive-timeout",
                        "addresses-per-mac",
                        "login-timeout",
                        "disabled",
                    ),  # fmt: skip
                    defaults={
                        "profile": "default",
                        "idle-timeout": "5m",
                        "keepalive-timeout": "none",
                        "addresses-per-mac": "2",
                        "disabled": "false",
                        "invalid": "false",
                    },  # fmt: skip
                ),
                Menu(
                    "ip/hotspot/user",
                    hotspot_user_props,
                    defaults={
                        "server": "all",
                        "profile": "default",
                        "disabled": "false",
                        "dynamic": "false",
                        "uptime": "0s",
                        "bytes-in": "0",
                        "bytes-out": "0",
                        "packets-in": "0",
                        "packets-out": "0",
                    },  # fmt: skip
                    required=("name",),
                ),
                Menu(
                    "ip/hotspot/user/profile",
                    profile_props,
                    defaults={
                        "shared-users": "1",
                        "idle-timeout": "none",
                        "keepalive-timeout": "2m",
                        "status-autorefresh": "1m",
                        "transparent-proxy": "false",
                        "add-mac-cookie": "true",
                        "mac-cookie-timeout": "3d",
                        "open-status-page": "always",
                        "default": "false",
                    },  # fmt: skip
                    required=("name",),
                ),
                Menu(
                    "ip/hotspot/active",
                    (
                        "server",
                        "user",
                        "address",
                        "mac-address",
                        "login-by",
                        "uptime",
                        "session-time-left",
                        "idle-time",
                        "bytes-in",
                        "bytes-out",
                        "packets-in",
                        "packets-out",
                        "radius",
                        "comment",
                    ),  # fmt: skip
                    unique_name=False,
                    writable=False,
                ),
            )
        }
        self.menus["ip/address"].items["*1"] = {
            ".id": "*1", "address": "192.168.88.1/24", "network": "192.168.88.0", "interface": "bridge",
            "actual-interface": "bridge", "disabled": "false", "dynamic": "false", "invalid": "false",
        }  # fmt: skip
        self.menus["ip/address"].next_id = 2
        profile_menu = self.menus["ip/hotspot/user/profile"]
        profile_menu.items["*0"] = {".id": "*0", **profile_menu.defaults, "name": "default", "default": "true"}

    def menu(self, path):
        return self.menus[path]

    def items(self, path):
        with self.lock:
            return [dict(item) for item in self.menus[path].items.values()]


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.open_connections = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self):
        """Cut every kept-alive connection, as a router that goes away does."""
        with self.connections_lock:
            connections, self.open_connections = list(self.open_connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                connection.close()

    def handle_error(self, request, client_address):
        pass  # a client that gave up (a timeout test) is not an error of the simulated router


class RouterOSSimulator:
    """Serves one simulated router on 127.0.0.1 (a free port unless one is given), in a daemon thread."""

    def __init__(self, *, username="admin", password="", host="127.0.0.1", port=0, delay=0.0, **state):
        self.username, self.password = username, password
        self.delay = delay
        self.accept_id_paths = True
        self.requests = []  # (method, path) of every request, for tests
        self.state = RouterOSState(**state)
        self._host, self._port = host, port
        self._server = None
        self._thread = None

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self):
        handler = type("Handler", (RouterOSHandler,), {"simulator": self})
        self._server = QuietServer((self._host, self._port), handler)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="routeros-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        """Stop listening and close the socket: a stopped router refuses connections."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def host(self):
        return self._host

    @property
    def port(self):
        return self._port

    @property
    def url(self):
        return f"http://{self._host}:{self._port}"

    # --- test helpers --------------------------------------------------------------------------------------

    def items(self, path):
        return self.state.items(path)

    def find(self, path, **properties):
        wanted = {key.replace("_", "-"): as_routeros_value(value) for key, value in properties.items()}
        return [item for item in self.items(path) if all(item.get(k) == v for k, v in wanted.items())]

    def add_active_session(self, *, user, address="10.5.50.10", mac_address="AA:BB:CC:DD:EE:01", server="hotspot1"):
        """A client logged in to the hotspot (the router creates these; the API can only read and remove)."""
        with self.state.lock:
            menu = self.state.menu("ip/hotspot/active")
            item_id = menu.new_id()
            menu.items[item_id] = {
                ".id": item_id, "server": server, "user": user, "address": address, "mac-address": mac_address,
                "login-by": "http-chap", "uptime": "5m12s", "idle-time": "0s", "session-time-left": "55m",
                "bytes-in": "1048576", "bytes-out": "5242880", "packets-in": "900", "packets-out": "4100",
                "radius": "false",
            }  # fmt: skip
            users = self.state.menu("ip/hotspot/user")
            for item in users.items.values():
                if item.get("name") == user:
                    item.update({"uptime": "5m12s", "bytes-in": "1048576", "bytes-out": "5242880"})
            return item_id


class RouterOSHandler(BaseHTTPRequestHandler):
    simulator: RouterOSSimulator = None
    protocol_version = "HTTP/1.1"  # keep-alive, as the router's www service
    server_version = "RouterOS-sim"

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # quiet: tests and `simulate` print their own lines

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_PUT(self):  # noqa: N802
        self._handle("PUT")

    def do_PATCH(self):  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self):  # noqa: N802
        self._handle("DELETE")

    def do_POST(self):  # noqa: N802
        self._handle("POST")

    # --- plumbing --------------------------------------------------------------------------------------------

    def _send(self, status, body=None):
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="routeros"')
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _fail(self, failure):
        body = {"error": failure.status, "message": failure.message}
        if failure.detail:
            body["detail"] = failure.detail
        self._send(failure.status, body)

    def _authorized(self):
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return username == self.simulator.username and password == self.simulator.password

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise bad_request("JSON parsing error") from None
        if not isinstance(body, dict):
            raise bad_request("JSON object expected")
        return body

    def _handle(self, method):
        simulator = self.simulator
        if simulator.delay:
            time.sleep(simulator.delay)
        parts = urlsplit(self.path)
        simulator.requests.append((method, parts.path))
        try:
            body = self._body()  # read it whatever happens, so the connection stays usable
            if not self._authorized():
                raise RouterOSFailure(401, "Unauthorized")
            if not parts.path.startswith("/rest/") and parts.path != "/rest":
                raise RouterOSFailure(*NOT_FOUND)
            words = [unquote(w) for w in parts.path[len("/rest") :].split("/") if w]
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            with simulator.state.lock:
                status, answer = Dispatcher(simulator).dispatch(method, words, query, body)
        except RouterOSFailure as failure:
            self._fail(failure)
            return
        self._send(status, answer)


class Dispatcher:
    """Maps a REST request on `/rest/<words>` to the menu it names, as RouterOS resolves console paths."""

    SINGLETONS = ("system/resource", "system/identity")

    def __init__(self, simulator):
        self.simulator = simulator
        self.state = simulator.state

    def resolve(self, words):
        """(menu path, rest of the words); the longest known menu wins. Unknown: 400 naming the bad word."""
        known = list(self.state.menus) + list(self.SINGLETONS)
        for length in range(len(words), 0, -1):
            path = "/".join(words[:length])
            if path in known:
                return path, words[length:]
        consumed = []
        for word in words:
            candidate = "/".join([*consumed, word])
            if not any(p == candidate or p.startswith(candidate + "/") for p in known):
                break
            consumed.append(word)
        raise bad_request(f"no such command or directory ({word})")

    def dispatch(self, method, words, query, body):
        if not words:
            raise bad_request("no such command or directory ()")
        path, rest = self.resolve(words)
        if path in self.SINGLETONS:
            return self.singleton(method, path, rest, query, body)
        menu = self.state.menu(path)
        if method == "POST":
            if len(rest) != 1 or rest[0] not in COMMAND_WORDS:
                raise bad_request(f"no such command or directory ({rest[0] if rest else path.split('/')[-1]})")
            return self.command(menu, rest[0], body)
        if len(rest) > 1 or (rest and not rest[0].startswith("*")):
            raise bad_request(f"no such command or directory ({rest[0]})")
        item_id = rest[0] if rest else None
        if item_id is not None and not self.simulator.accept_id_paths:
            raise bad_request(f"no such command or directory ({item_id})")
        if method == "GET":
            if item_id is None:
                proplist = query.pop(".proplist", None)
                matches = [i for i in menu.items.values() if all(i.get(k) == v for k, v in query.items())]
                return 200, [project(item, proplist) for item in matches]
            return 200, project(self.item(menu, item_id), query.get(".proplist"))
        if method == "PUT" and item_id is None:
            return 200, dict(menu.items[self.add(menu, body)])
        if method == "PATCH" and item_id is not None:
            return 200, dict(self.set(menu, item_id, body))
        if method == "DELETE" and item_id is not None:
            self.remove(menu, item_id)
            return 204, None
        raise RouterOSFailure(405, "Method Not Allowed")

    # --- singletons ------------------------------------------------------------------------------------------

    def singleton_value(self, path):
        if path == "system/identity":
            return {"name": self.state.identity}
        return dict(self.state.resource)

    def singleton(self, method, path, rest, query, body):
        if method == "GET" and not rest:
            return 200, project(self.singleton_value(path), query.get(".proplist"))
        if method == "POST" and rest == ["print"]:
            return 200, [project(self.singleton_value(path), body.get(".proplist"))]
        settable = path == "system/identity"
        if settable and ((method == "POST" and rest == ["set"]) or (method == "PATCH" and not rest)):
            unknown = set(body) - {"name", ".id"}
            if unknown:
                raise bad_request(f"unknown parameter {sorted(unknown)[0]}")
            if "name" in body:
                self.state.identity = as_routeros_value(body["name"])
            return 200, ([] if method == "POST" else self.singleton_value(path))
        if rest:
            raise bad_request(f"no such command or directory ({rest[0]})")
        raise RouterOSFailure(405, "Method Not Allowed")

    # --- items -----------------------------------------------------------------------------------------------

    def item(self, menu, item_id):
        item = menu.items.get(item_id)
        if item is None:
            raise RouterOSFailure(*NOT_FOUND)
        return item

    def check_properties(self, menu, body):
        for key in body:
            if key != ".id" and key not in menu.properties:
                raise bad_request(f"unknown parameter {key}")
        values = {key: as_routeros_value(value) for key, value in body.items() if key != ".id"}
        profile = values.get("profile")
        if menu.path == "ip/hotspot/user" and profile is not None:
            profiles = self.state.menu("ip/hotspot/user/profile")
            if profiles.find_name(profile) is None:
                raise bad_request("input does not match any value of profile")
        return values

    def add(self, menu, body):
        if not menu.writable:
            raise bad_request("no such command or directory (add)")
        values = self.check_properties(menu, body)
        missing = [key for key in menu.required if not values.get(key)]
        if missing:
            raise bad_request(f"missing value(s) of argument(s) {' '.join(missing)}")
        if menu.unique_name:
            if "name" not in values:
                values["name"] = f"{menu.path.split('/')[-1]}{len(menu.items) + 1}"
            if menu.find_name(values["name"]) is not None:
                raise bad_request("failure: already have such name")
        if menu.path == "ip/address" and "network" not in values:
            values["network"] = values["address"].split("/")[0]
        item_id = menu.new_id()
        menu.items[item_id] = {".id": item_id, **menu.defaults, **values}
        return item_id

    def set(self, menu, item_id, body):
        if not menu.writable:
            raise bad_request("no such command or directory (set)")
        item = self.item(menu, item_id)
        values = self.check_properties(menu, body)
        if menu.unique_name and "name" in values and menu.find_name(values["name"], exclude=item_id) is not None:
            raise bad_request("failure: already have such name")
        item.update(values)
        return item

    def remove(self, menu, item_id):
        item = self.item(menu, item_id)
        if menu.path == "ip/hotspot/user/profile" and item.get("default") == "true":
            raise bad_request("failure: can not remove default profile")
        del menu.items[item_id]

    def ids(self, menu, body):
        raw = body.get(".id") or body.get("numbers")
        if not raw:
            raise bad_request("missing value(s) of argument(s) .id")
        ids = [part for part in as_routeros_value(raw).split(",") if part]
        for item_id in ids:
            if item_id not in menu.items:
                raise bad_request("no such item")
        return ids

    def command(self, menu, word, body):
        if word == "add":
            return 200, {"ret": self.add(menu, body)}
        if word == "print":
            proplist, words = body.get(".proplist"), body.get(".query") or []
            if not isinstance(words, list):
                raise bad_request("invalid query")
            matches = compile_query(words)
            return 200, [project(item, proplist) for item in menu.items.values() if matches(item)]
        if word == "get":
            item = self.item(menu, as_routeros_value(body.get(".id") or body.get("number")))
            return 200, {"ret": item.get(body.get("value-name", ""), "")}
        ids = self.ids(menu, body)
        if word == "remove":
            for item_id in ids:
                self.remove(menu, item_id)
        elif word == "set":
            for item_id in ids:
                self.set(menu, item_id, body)
        else:  # enable / disable
            for item_id in ids:
                self.set(menu, item_id, {"disabled": word == "disable"})
        return 200, []
