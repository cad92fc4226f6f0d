"""Outbound connections that cannot reach the instance's own network unless it is allowed.

A rep types the host of their IMAP or CalDAV server; without this, any host and port of the
network the server sits in (loopback, RFC 1918, link-local with cloud metadata at
169.254.169.254) could be probed through the sync error messages. `connect()` resolves the
name once, refuses when any address is not public and not allowed, and connects to exactly
the addresses it checked (no second resolution a rebinding DNS server could answer
differently). A refused target is never contacted, so its message cannot tell refused,
dropped and timed-out ports apart.

`allowed` entries are host names (exact, case-insensitive: every address they resolve to is
allowed) or networks in CIDR ("10.0.0.0/8", "127.0.0.1/32", "fd00::/8").
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address in the last 32 bits


class BlockedAddress(Exception):
    """The host is, or resolves to, an address this instance does not connect to."""


@dataclass(frozen=True)
class Allowed:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> Allowed:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            text = entry.strip().lower().rstrip(".")
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                hosts.add(text)
        return cls(frozenset(hosts), tuple(networks))

    def host(self, host: str) -> bool:
        return _bare(host) in self.hosts

    def address(self, address: IPAddress) -> bool:
        return any(
            address in network for network in self.networks if network.version == address.version
        )


def _bare(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped (::ffff:a.b.c.d), 6to4, NAT64."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether the address is on the public internet: not loopback, private, link-local,
    unspecified, multicast, reserved or shared (CGNAT), in IPv4 or any IPv6 form of it."""
    inner = _embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or not address.is_global
    )


def _parse(sockaddr_host: str) -> IPAddress:
    return ipaddress.ip_address(sockaddr_host.split("%", 1)[0])  # drop an IPv6 zone id


def _refusal(host: str) -> BlockedAddress:
    return BlockedAddress(
        f"{_bare(host)!r} is, or resolves to, a loopback, private, link-local or otherwise "
        "non-public address; this instance does not connect there (an operator can allow it "
        "with TALLY_ALLOWED_PRIVATE_HOSTS)"
    )


def resolve(
    host: str, port: int, allowed: Sequence[str]
) -> list[tuple[socket.AddressFamily, tuple[str, int] | tuple[str, int, int, int]]]:
    """The addresses to connect to, each checked: (family, sockaddr). Raises BlockedAddress
    when any is not public and not allowed, socket.gaierror (an OSError) when the name does
    not resolve."""
    rules = Allowed.parse(allowed)
    found = socket.getaddrinfo(_bare(host), port, type=socket.SOCK_STREAM)
    targets: list[tuple[socket.AddressFamily, tuple[str, int] | tuple[str, int, int, int]]] = []
    for family, _type, _proto, _name, sockaddr in found:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = _parse(str(sockaddr[0]))
        if not rules.host(host) and not is_public(address) and not rules.address(address):
            raise _refusal(host)
        target = (family, sockaddr)
        if target not in targets:
            targets.append(target)  # type: ignore[arg-type]
    if not targets:
        raise socket.gaierror(socket.EAI_NONAME, f"{_bare(host)!r} has no IP address")
    return targets


def check_host(host: str, port: int, allowed: Sequence[str]) -> None:
    """Raise BlockedAddress when `host` is or resolves to an address that is not public and
    not allowed (for saving a configuration; `connect` checks again when it connects).
    socket.gaierror (an OSError) when the name does not resolve."""
    resolve(host, port, allowed)


def connect(
    host: str,
    port: int,
    *,
    allowed: Sequence[str],
    connect_timeout: float,
    read_timeout: float | None,
) -> socket.socket:
    """A connected TCP socket to `host`: the addresses checked are the ones tried, in order,
    within `connect_timeout` in all; then `read_timeout` applies to every read and write."""
    targets = resolve(host, port, allowed)
    deadline = time.monotonic() + connect_timeout
    last: OSError | None = None
    for family, sockaddr in targets:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(left)
            sock.connect(sockaddr)
        except OSError as error:
            sock.close()
            last = error
            continue
        sock.settimeout(read_timeout)
        return sock
    raise last if last is not None else TimeoutError(f"connecting to {_bare(host)} timed out")
