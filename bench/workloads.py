"""The workload registry.

A workload names one kind of request; `build(context)` returns the Request that wrk repeats for the whole run.
To add one (device checksum poll, monitoring ingest, device list...): seed what it needs in `bench/seed.py`
(called from `bench/__main__.py`, with the counts in `Context`), then append a `Workload` to WORKLOADS.
"""

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Context:
    base_url: str
    token: str
    sites: int

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

BY_NAME = {workload.name: workload for workload in WORKLOADS}
