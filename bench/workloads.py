"""The workload registry.

A workload names one kind of request; `build(context)` returns the Request that wrk repeats for the whole run.
To add one (device checksum poll, monitoring ingest, device list...): seed what it needs in `bench/seed.py`
(called from `bench/__main__.py`, with the counts in `Context`), then append a `Workload` to WORKLOADS.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from bench import seed


@dataclass(frozen=True)
class Context:
    base_url: str
    token: str
    sites: int
    devices: int = 0
    sample: tuple = ()  # (device id hex, key) of random devices of the fleet
    organization: str = ""  # id of the default organization
    chart_documents: int = 0  # documents of history behind device_chart_7d's device (the sample's last)

    def auth_headers(self):
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict = field(default_factory=dict)
    body: bytes | None = None
    # extra keys for the workload's JSON line (e.g. how many objects the endpoint lists)
    extra: dict = field(default_factory=dict)
    # a random one per request (wrk's Lua picks it), and extra Lua (e.g. a request() making unique bodies)
    paths: tuple = ()
    lua: str | None = None
    # how many of what the requests store, counted before and after the measured run (e.g. ingested points):
    # fn(instance) -> int; with `stored_per_request`, the run reports stored requests against answered ones
    count_stored: Callable | None = None
    stored_per_request: int = 1


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    build: Callable[[Context], Request]


WORKLOADS = [
    Workload(
        "health",
        "GET /api/v1/health/ without auth: database, cache and broker checks",
        lambda ctx: Request("GET", "/api/v1/health/"),
    ),
    Workload(
        "sites_list",
        "GET /api/v1/sites/?page_size=50 with a Bearer token (first page of the seeded sites)",
        lambda ctx: Request("GET", "/api/v1/sites/?page_size=50", ctx.auth_headers(), extra={"sites": ctx.sites}),
    ),
]


def _agent_paths(ctx, endpoint):
    return tuple(f"/controller/device/{endpoint}/{pk}/?key={key}" for pk, key in ctx.sample)


# unique name and MAC per request: 2^40 random space, so repeats within a run are vanishingly rare
DEVICE_CREATE_LUA = """
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
request = function()
  local n = math.random(0, 2^40)
  local mac = string.format("02:%02X:%02X:%02X:%02X:%02X", n % 256, math.floor(n / 256) % 256,
    math.floor(n / 65536) % 256, math.floor(n / 16777216) % 256, math.floor(n / 4294967296) % 256)
  local body = string.format('{"name": "new-%d", "mac_address": "%s", "organization": "%s"}', n, mac, ORG)
  return wrk.format("POST", nil, nil, body)
end
"""

INGEST_POINTS = 16  # points a document stores: cpu, memory, disk, 4 traffic fields per interface, wlan0's clients
INGEST_DOCUMENT = json.dumps(
    {
        "type": "DeviceMonitoring",
        "general": {"hostname": "ap", "local_time": 1700000000, "uptime": 86400},
        "resources": {
            "load": [0.4, 0.3, 0.2],
            "cpus": 2,
            "memory": {"total": 268435456, "free": 100000000, "buffered": 20000000, "shared": 1000000},
            "swap": {"total": 0, "free": 0},
            "disk": [{"used_bytes": 3000000, "size_bytes": 10000000, "mount_point": "/", "filesystem": "/dev/root"}],
        },
        "interfaces": [
            {"name": "eth0", "type": "ethernet", "statistics": {"rx_bytes": 123456789, "tx_bytes": 98765432}},
            {
                "name": "wlan0",
                "type": "wireless",
                "statistics": {"rx_bytes": 5555555, "tx_bytes": 4444444},
                "wireless": {
                    "ssid": "guests",
                    "mode": "access_point",
                    "clients": [{"mac": f"02:00:00:00:00:{i:02x}", "vendor": "ACME"} for i in range(10)],
                },
            },
            {"name": "wlan1", "type": "wireless", "statistics": {"rx_bytes": 1, "tx_bytes": 2}},
        ],
    }
)

WORKLOADS += [
    Workload(
        "agent_checksum",
        "GET /controller/device/checksum/{id}/?key= for random devices of the fleet (the agent's poll)",
        lambda ctx: Request(
            "GET", _agent_paths(ctx, "checksum")[0], paths=_agent_paths(ctx, "checksum"), extra={"devices": ctx.devices}
        ),
    ),
    Workload(
        "agent_download_config",
        "GET /controller/device/download-config/{id}/?key= for random devices (the cached archive)",
        lambda ctx: Request(
            "GET",
            _agent_paths(ctx, "download-config")[0],
            paths=_agent_paths(ctx, "download-config"),
            extra={"devices": ctx.devices},
        ),
    ),
    Workload(
        "device_list",
        "GET /api/v1/controller/device/?page_size=100 with a Bearer token (first page of the fleet)",
        lambda ctx: Request(
            "GET", "/api/v1/controller/device/?page_size=100", ctx.auth_headers(), extra={"devices": ctx.devices}
        ),
    ),
    Workload(
        "device_create",
        "POST /api/v1/controller/device/ with a unique name and MAC each time (default templates applied)",
        lambda ctx: Request(
            "POST",
            "/api/v1/controller/device/",
            {**ctx.auth_headers(), "Content-Type": "application/json"},
            json.dumps(
                {"name": "probe-0", "mac_address": "02:00:00:00:00:00", "organization": ctx.organization}
            ).encode(),
            lua=f'ORG = "{ctx.organization}"\n' + DEVICE_CREATE_LUA,
        ),
    ),
    Workload(
        "monitoring_ingest",
        "POST /api/v1/monitoring/device/{id}/?key= a NetJSON document (resources, 3 interfaces, 10 clients)",
        lambda ctx: Request(
            "POST",
            f"/api/v1/monitoring/device/{ctx.sample[0][0]}/?key={ctx.sample[0][1]}",
            {"Content-Type": "application/json"},
            INGEST_DOCUMENT.encode(),
            paths=tuple(f"/api/v1/monitoring/device/{pk}/?key={key}" for pk, key in ctx.sample),
            extra={"devices": ctx.devices},
            count_stored=seed.stored_points,
            stored_per_request=INGEST_POINTS,
        ),
    ),
    Workload(
        "device_chart_7d",
        "GET /api/v1/monitoring/device/{id}/?key=&time=7d: charts of a device with 7 days of 5-minute data",
        lambda ctx: Request(
            "GET",
            f"/api/v1/monitoring/device/{ctx.sample[-1][0]}/?key={ctx.sample[-1][1]}&time=7d",
            extra={"documents": ctx.chart_documents},
        ),
    ),
]

BY_NAME = {workload.name: workload for workload in WORKLOADS}
