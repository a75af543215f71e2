"""Requests to URLs that tenants configure (alert webhooks). An organization's admin must not be able to make the
controller call its own host, its cloud's metadata service or other addresses an operator blocks (server-side
request forgery): every address the URL's host resolves to is checked against NETFLEET_OUTBOUND_BLOCKED_NETWORKS,
and the connection is made to the address that was checked, so a DNS answer that changes in between cannot
redirect it. TLS still verifies the URL's host name. Proxies from the environment are not used."""

import ipaddress
import socket
from urllib.parse import urlsplit

import httpcore
from django.conf import settings


class BlockedDestination(httpcore.ConnectError):
    """The URL's host is, or resolves to, an address in a blocked network."""


# what a failed delivery may raise: the caller records it and retries
DELIVERY_ERRORS = (
    httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError, httpcore.UnsupportedProtocol
)  # fmt: skip


def blocked_network(address):
    """The blocked network an address (text) is in, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is not part of the address
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for network in settings.NETFLEET_OUTBOUND_BLOCKED_NETWORKS:
        if ip in ipaddress.ip_network(network):
            return network
    return None


def literal_address_problem(url):
    """Why a URL whose host is an IP address may not be called (a message), or None: the early check when the URL
    is saved. Host names are checked when they are resolved, at delivery."""
    host = urlsplit(url).hostname or ""
    try:
        network = blocked_network(host)
    except ValueError:
        return None  # a host name
    return f"Must not point at {host}: the network {network} is blocked for outbound requests." if network else None


class _CheckedBackend(httpcore.SyncBackend):
    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        address = _checked_address(host, port)
        return super().connect_tcp(address, port, timeout, local_address=local_address, socket_options=socket_options)


def _checked_address(host, port):
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    addresses = [info[4][0] for info in found]
    for address in addresses:
        network = blocked_network(address)
        if network is not None:
            raise BlockedDestination(f"{host} resolves to {address}, in the blocked network {network}")
    return addresses[0]


def post(url, *, content, headers, timeout):
    """POST `content` to `url` through checked addresses only; the response's status code. Raises one of
    DELIVERY_ERRORS (BlockedDestination for a blocked address)."""
    with httpcore.ConnectionPool(network_backend=_CheckedBackend()) as pool:
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), timeout)
        response = pool.request("POST", url, headers=headers, content=content, extensions={"timeout": timeouts})
        return response.status
