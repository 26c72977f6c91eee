"""Name lookups for new connections, cached per (host, port)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any

from afetch.http.oserrors import connect_failure
from afetch.http.timing import HopTiming

DNS_TTL_SECONDS = 300.0

Address = tuple[Any, ...]  # one getaddrinfo entry: (family, type, proto, canonname, sockaddr)


class Resolver:
    """Host names → addresses; IP literals need no lookup."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], tuple[float, list[Address]]] = {}

    async def resolve(self, host: str, port: int, hop: HopTiming) -> list[Address]:
        cached = self._cache.get((host, port))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        literal = ip_family(host)
        if literal is not None:
            known = [(literal, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
            self._cache[(host, port)] = (float("inf"), known)
            return known
        hop.dns_start = time.perf_counter()
        try:
            addresses: list[Address] = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise connect_failure(host, port, exc) from exc
        hop.dns_end = time.perf_counter()
        self._cache[(host, port)] = (time.monotonic() + DNS_TTL_SECONDS, addresses)
        return addresses


def ip_family(host: str) -> socket.AddressFamily | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET
