"""Active checks' probes. Ping uses icmplib (raw ICMP sockets when running as root, else unprivileged datagram
sockets where net.ipv4.ping_group_range allows them); hosts are probed concurrently."""

import asyncio
import os
from dataclasses import dataclass

import icmplib
from django.conf import settings

CONCURRENCY = 64


@dataclass(frozen=True, slots=True)
class PingResult:
    reachable: bool
    loss: float  # percent
    rtt_min: float | None  # ms
    rtt_avg: float | None
    rtt_max: float | None


UNREACHABLE = PingResult(False, 100.0, None, None, None)


async def _ping(address, limit):
    async with limit:
        try:
            host = await icmplib.async_ping(
                address,
                count=settings.NETFLEET_MONITORING_PING_COUNT,
                interval=0.2,
                timeout=settings.NETFLEET_MONITORING_PING_TIMEOUT,
                privileged=os.geteuid() == 0,
            )
        except (icmplib.ICMPLibError, OSError):  # no route, unresolvable, socket refused: not reachable
            return address, UNREACHABLE
    if not host.is_alive:
        return address, UNREACHABLE
    result = PingResult(True, round(host.packet_loss * 100, 2), host.min_rtt, host.avg_rtt, host.max_rtt)
    return address, result


async def _ping_all(addresses):
    limit = asyncio.Semaphore(CONCURRENCY)
    return dict(await asyncio.gather(*(_ping(address, limit) for address in addresses)))


def ping_hosts(addresses):
    """{address: PingResult} for every address."""
    addresses = sorted(set(addresses))
    return asyncio.run(_ping_all(addresses)) if addresses else {}
