"""Host names → addresses: asynchronous, coalesced, cached, bounded. Shared by both transports.

Lookups go to c-ares (through aiodns) when it is installed, so they are
never queued behind a thread pool of fixed size (``loop.getaddrinfo`` under
uvloop runs on libuv's 4 threads: 66 lookups a second at 30 ms each).
c-ares reads ``/etc/resolv.conf`` itself. Names in the hosts file
(``/etc/hosts``, or the file ``$CARES_HOSTS`` names) are answered from it
here, with *every* address it lists in both families: c-ares gives only
the first, so a refused or black-holed ``::1`` failed the request where
curl falls back in 0.25 s. Without aiodns, the loop's ``getaddrinfo`` is
the fallback.

- Concurrent lookups of one name share one query (a task of the resolver's
  own, so a request that times out does not cancel the others' lookup).
- Answers are cached for their TTL (clamped to 30 s - 5 min), NXDOMAIN and
  "no address" for 30 s; the cache holds at most ``max_entries`` names,
  least recently used first out, so memory does not grow with the number
  of distinct hosts.
- ``--resolve HOST:PORT:ADDR`` pins answers and ``--dns-servers`` picks the
  name servers, as in curl.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from afetch.errors import DnsError, PolicyError
from afetch.http.options import Pin
from afetch.http.timing import HopTiming

if TYPE_CHECKING:
    from afetch.http.policy import AddressPolicy

#: One address of a host: (family, IP text, IPv6 flow info and scope id).
Address = tuple[socket.AddressFamily, str, tuple[int, ...]]
#: What connecting needs: getaddrinfo's shape, port included.
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]

MIN_TTL, MAX_TTL, NEGATIVE_TTL = 30.0, 300.0, 30.0
#: Digits, hex with 0x, dots: what inet_aton may read as an IPv4 address.
#: A character no IP literal has (hex digits, '.', ':', brackets, 'x'; a %zone aside).
_NAME_CHARACTER = re.compile(r"[g-wyzG-WYZ_-]")
_LEGACY_IPV4 = re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]+)(?:\.(?:0[xX][0-9a-fA-F]+|[0-9]+)){0,3}")
MAX_ENTRIES = 4096
# c-ares status codes that mean "this name has no address" (cached as such).
_ARES_ENODATA, _ARES_ENOTFOUND = 1, 4


@dataclass(slots=True)
class _Answer:
    addresses: list[Address]
    expires: float
    error: str | None = None  # a cached negative answer


class Resolver:
    """Resolves for connecting: IP literals and pins at once, names through the cache."""

    def __init__(
        self,
        *,
        pins: Iterable[Pin] = (),
        family: socket.AddressFamily = socket.AF_UNSPEC,
        max_entries: int = MAX_ENTRIES,
        nameservers: tuple[str, ...] = (),
        query_options: dict[str, Any] | None = None,
        policy: AddressPolicy | None = None,
    ) -> None:
        self._nameservers = nameservers
        self._policy = policy
        self._query_options = query_options or {}
        self._pins = {(pin.host.lower(), pin.port): pin.addresses for pin in pins}
        self._family = family
        self._max_entries = max_entries
        self._cache: OrderedDict[str, _Answer] = OrderedDict()
        self._pending: dict[str, asyncio.Task[_Answer]] = {}
        self._backend: _Backend | None = None
        self._hosts: dict[str, list[Address]] | None = None

    async def resolve(self, host: str, port: int, hop: HopTiming | None = None) -> list[AddrInfo]:
        """Every address of ``host`` to connect to, in the order to try them."""
        literal = _literal(host)
        if literal is not None:
            return self._infos([literal], port, host)
        pinned = self._pins.get((host, port)) or self._pins.get((host, None))
        if pinned is not None:
            return self._infos([a for p in pinned if (a := _literal(p))], port, host)
        if self._hosts is None:
            self._hosts = read_hosts_file()
        listed = self._hosts.get(host.lower())
        if listed is not None:
            if hop is not None:  # a lookup all the same (curl counts it too): a dns_ms
                hop.dns_start = hop.dns_end = time.perf_counter()
            return self._infos(listed, port, host)
        answer = self._cached(host)
        if answer is None:
            answer = await self._lookup(host, hop)
        if answer.error is not None:
            raise DnsError(f"{host}:{port}: {answer.error}")
        return self._infos(answer.addresses, port, host)

    async def close(self) -> None:
        for task in self._pending.values():
            task.cancel()
        if self._pending:
            await asyncio.wait(list(self._pending.values()))
        backend, self._backend = self._backend, None
        if backend is not None:
            await backend.close()

    def _cached(self, host: str) -> _Answer | None:
        answer = self._cache.get(host)
        if answer is None:
            return None
        if answer.expires <= time.monotonic():
            del self._cache[host]
            return None
        self._cache.move_to_end(host)
        return answer

    async def _lookup(self, host: str, hop: HopTiming | None) -> _Answer:
        task = self._pending.get(host)
        if task is None:
            # The first asker times the lookup; others waited for it, they did not do one.
            if hop is not None:
                hop.dns_start = time.perf_counter()
            task = asyncio.get_running_loop().create_task(self._query(host))
            self._pending[host] = task
            task.add_done_callback(lambda done: self._settle(host, done))
            answer = await asyncio.shield(task)
            if hop is not None:
                hop.dns_end = time.perf_counter()
            return answer
        return await asyncio.shield(task)

    async def _query(self, host: str) -> _Answer:
        if self._backend is None:
            self._backend = _backend(self._nameservers, self._query_options)
        now = time.monotonic()
        try:
            addresses, ttl = await self._backend.lookup(host, self._family)
        except _NoAddress as exc:
            return _Answer([], now + NEGATIVE_TTL, exc.reason)
        except _LookupFailed as exc:
            return _Answer([], now, exc.reason)  # not cached: the next request asks again
        if not addresses:
            return _Answer([], now + NEGATIVE_TTL, "no address of the requested family")
        return _Answer(addresses, now + min(max(ttl, MIN_TTL), MAX_TTL))

    def _settle(self, host: str, task: asyncio.Task[_Answer]) -> None:
        del self._pending[host]
        if task.cancelled():
            return
        answer = task.result()  # _query returns every failure as an answer
        if answer.expires > time.monotonic():
            self._cache[host] = answer
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)

    def _infos(self, addresses: list[Address], port: int, host: str) -> list[AddrInfo]:
        infos: list[AddrInfo] = []
        refused = None
        for family, ip, extra in addresses:
            if self._family not in (socket.AF_UNSPEC, family):
                continue
            if self._policy is not None and (why := self._policy.refusal(host, ip)) is not None:
                refused = why  # never dialled: the check is on the address, not the name
                continue
            sockaddr = (ip, port, *extra) if family == socket.AF_INET6 else (ip, port)
            infos.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        if not infos:
            if refused is not None:
                raise PolicyError(f"{host}:{port}: refused by the address policy: {refused}")
            raise DnsError(f"{host}:{port}: no address of the requested family")
        return infos


def read_hosts_file(path: str | None = None) -> dict[str, list[Address]]:
    """Name → every address the hosts file lists for it, in the file's order."""
    path = path or os.environ.get("CARES_HOSTS") or "/etc/hosts"
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(1 << 20)
    except OSError:
        return {}
    names: dict[str, list[Address]] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or (address := _literal(fields[0].split("%")[0])) is None:
            continue
        for name in fields[1:]:
            listed = names.setdefault(name.lower(), [])
            if address not in listed:
                listed.append(address)
    return names


def ipv4_literal(host: str) -> str | None:
    """The canonical text of an IPv4 address in any form inet_aton reads; None otherwise."""
    literal = _literal(host)
    return literal[1] if literal is not None and literal[0] == socket.AF_INET else None


def _literal(host: str) -> Address | None:
    """An IP address written as the host (``[...]`` around IPv6 allowed) needs no lookup.

    So do the old IPv4 forms ``inet_aton`` reads (``127.1``, ``0x7f.1``,
    ``2130706433``), as curl and browsers read them: they are addresses, and the
    address policy must see them as such.
    """
    if "%" not in host and _NAME_CHARACTER.search(host):  # a name: ValueError costs µs
        return None
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if not host or not _LEGACY_IPV4.fullmatch(host):
            return None
        try:
            packed = socket.inet_aton(host)
        except OSError:
            return None
        return (socket.AF_INET, socket.inet_ntoa(packed), ())
    if address.version == 6:
        return (socket.AF_INET6, str(address), (0, 0))
    return (socket.AF_INET, str(address), ())


class _NoAddress(Exception):
    """The name does not exist or has no address: worth caching for a while."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _LookupFailed(_NoAddress):
    """The resolver failed (timeout, refused, server failure): not cached."""


class _Backend:
    async def lookup(self, host: str, family: socket.AddressFamily) -> tuple[list[Address], float]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class _CaresBackend(_Backend):
    """c-ares through aiodns: no thread pool, any number of queries in flight.

    c-ares keeps a query cache of its own, unbounded in size (about 2 KiB a
    name, for up to an hour). The cache that matters is the Resolver's, so
    the c-ares channel is replaced every ``ROTATE_AFTER`` queries, and the
    old one closed once its last query has answered: its cache goes with it.
    """

    ROTATE_AFTER = 1000

    def __init__(self, nameservers: tuple[str, ...], options: dict[str, Any]) -> None:
        import aiodns

        self._aiodns = aiodns
        self._nameservers = list(nameservers) or None
        self._options = options  # c-ares channel options (timeout, tries): tests shorten them
        self._resolver = self._channel()
        self._queries = 0
        self._in_flight: dict[Any, int] = {}
        self._retired: set[asyncio.Task[None]] = set()

    async def lookup(self, host: str, family: socket.AddressFamily) -> tuple[list[Address], float]:
        resolver = self._take()
        try:
            result = await resolver.getaddrinfo(host, family=family, type=socket.SOCK_STREAM)
        except self._aiodns.error.DNSError as exc:
            code = exc.args[0] if exc.args else None
            reason = str(exc.args[1]) if len(exc.args) > 1 else "lookup failed"
            if code in (_ARES_ENODATA, _ARES_ENOTFOUND):
                raise _NoAddress(reason) from exc
            raise _LookupFailed(reason) from exc
        finally:
            self._give_back(resolver)
        addresses: list[Address] = []
        ttl = MAX_TTL
        for node in result.nodes:
            raw = node.addr[0]
            ip = raw.decode("ascii") if isinstance(raw, bytes) else str(raw)
            extra = tuple(node.addr[2:4]) if node.family == socket.AF_INET6 else ()
            addresses.append((socket.AddressFamily(node.family), ip, extra))
            ttl = min(ttl, float(node.ttl))
        return _unique(addresses), ttl

    def _channel(self) -> Any:
        return self._aiodns.DNSResolver(nameservers=self._nameservers, **self._options)

    def _take(self) -> Any:
        self._queries += 1
        if self._queries > self.ROTATE_AFTER:
            self._queries = 1
            old = self._resolver
            self._resolver = self._channel()
            if not self._in_flight.get(old):
                self._retire(old)
        resolver = self._resolver
        self._in_flight[resolver] = self._in_flight.get(resolver, 0) + 1
        return resolver

    def _give_back(self, resolver: Any) -> None:
        left = self._in_flight[resolver] - 1
        if left:
            self._in_flight[resolver] = left
            return
        del self._in_flight[resolver]
        if resolver is not self._resolver:
            self._retire(resolver)

    def _retire(self, resolver: Any) -> None:
        task = asyncio.get_running_loop().create_task(resolver.close())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    async def close(self) -> None:
        for resolver in [*self._in_flight, self._resolver]:
            await resolver.close()
        if self._retired:
            await asyncio.wait(self._retired)


class _ThreadedBackend(_Backend):
    """The loop's getaddrinfo: used only where aiodns cannot be imported."""

    async def lookup(self, host: str, family: socket.AddressFamily) -> tuple[list[Address], float]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, family=family, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
                raise _NoAddress(exc.strerror or str(exc)) from exc
            raise _LookupFailed(exc.strerror or str(exc)) from exc
        addresses = [
            (socket.AddressFamily(fam), str(sockaddr[0]), tuple(sockaddr[2:4]))
            for fam, _, _, _, sockaddr in infos
        ]
        return _unique(addresses), MAX_TTL


def _unique(addresses: list[Address]) -> list[Address]:
    return list(dict.fromkeys(addresses))


def _backend(nameservers: tuple[str, ...], options: dict[str, Any]) -> _Backend:
    try:
        return _CaresBackend(nameservers, options)
    except ImportError:
        return _ThreadedBackend()  # --dns-servers needs c-ares: the system's are used
