"""A small authoritative DNS server over UDP, for tests and the simulated internet in bench/.

It answers A and AAAA queries from a function (name → addresses, or None
for NXDOMAIN) after a configurable delay, and counts the queries per name,
so tests can prove lookups are coalesced and cached. No dependency: the
wire format (RFC 1035) is packed by hand; EDNS and other additional
records in a query are ignored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable

Answers = Callable[[str], list[str] | None]
_A, _AAAA = 1, 28
_NXDOMAIN = 3


def _question(packet: bytes) -> tuple[str, int, int] | None:
    """(name, qtype, end offset of the question) of the first question."""
    labels, offset = [], 12
    while offset < len(packet):
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        labels.append(packet[offset : offset + length].decode("ascii", "replace"))
        offset += length
    if offset + 4 > len(packet):
        return None
    (qtype,) = struct.unpack_from("!H", packet, offset)
    return ".".join(labels).lower(), qtype, offset + 4


def reply(packet: bytes, answers: Answers, ttl: int = 60) -> bytes | None:
    """The response to one query packet."""
    if len(packet) < 12:
        return None
    parsed = _question(packet)
    if parsed is None:
        return None
    name, qtype, end = parsed
    (query_id,) = struct.unpack_from("!H", packet)
    addresses = answers(name)
    records = b""
    count = 0
    for text in addresses or ():
        address = ipaddress.ip_address(text)
        if (qtype, address.version) not in ((_A, 4), (_AAAA, 6)):
            continue
        rdata = address.packed
        records += struct.pack("!HHHIH", 0xC00C, qtype, 1, ttl, len(rdata)) + rdata
        count += 1
    rcode = _NXDOMAIN if addresses is None else 0
    header = struct.pack("!HHHHHH", query_id, 0x8180 | rcode, 1, count, 0, 0)
    return header + packet[12:end] + records


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        parsed = _question(data) if len(data) >= 12 else None
        if parsed is not None:
            self.server.queries[parsed[0]] += 1
        response = reply(data, self.server.answers, self.server.ttl)
        if response is None or self.transport is None:
            return
        transport = self.transport
        if self.server.delay > 0:
            asyncio.get_running_loop().call_later(
                self.server.delay, transport.sendto, response, addr
            )
        else:
            transport.sendto(response, addr)


class DnsServer:
    """Runs on its own loop in a thread; ``address`` is ``"127.0.0.1:PORT"``."""

    def __init__(
        self,
        answers: Answers,
        *,
        delay: float = 0.0,
        ttl: int = 60,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.answers = answers
        self.delay = delay
        self.ttl = ttl
        self.queries: Counter[str] = Counter()
        self._host, self._port = host, port
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{self._host}:{self._port}"

    def start(self) -> DnsServer:
        self._thread = threading.Thread(target=self._main, daemon=True, name="dns-server")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("DNS server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _main(self) -> None:
        self._loop = loop = asyncio.new_event_loop()
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        # Room for bursts of queries (hundreds of lookups started at once): a full
        # buffer drops them, and the asker waits out its retry timer.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        transport, _ = loop.run_until_complete(
            loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        )
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            transport.close()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()


def serve_forever(answers: Answers, host: str, port: int, delay: float) -> None:
    """Run in the foreground (bench/: the simulated internet's resolver)."""
    server = DnsServer(answers, delay=delay, host=host, port=port)
    server._main()
