"""The suite's own HTTP/2 servers: the ``h2`` package server-side, on asyncio sockets.

One thread, one loop, several ports: h2c and TLS (ALPN h2, else a canned
HTTP/1.1 answer), one whose SETTINGS allow few streams, one that sends
GOAWAY after a few streams, and hostile ones (PING flood, a header list
over the limits, a window that never opens). Paths choose the answer:

- ``/ok``, ``/status/N``, ``/bytes/N`` (N bytes, flow-controlled),
  ``/slow?s=0.1``, ``/echo`` (the request's header list and body length as
  JSON), ``/hang`` (never answered);
- ``/reset`` (RST_STREAM INTERNAL_ERROR), ``/refuse/KEY`` (REFUSED_STREAM
  the first time for KEY), ``/h11`` (HTTP_1_1_REQUIRED).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame
import trustme


@dataclass
class H2State:
    connections: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    active: int = 0
    max_active: int = 0
    max_active_one_connection: int = 0
    refused: set[str] = field(default_factory=set)
    h1_requests: int = 0


@dataclass(frozen=True)
class Behaviour:
    name: str
    max_streams: int = 1000
    goaway_after: int | None = None  # streams answered before a GOAWAY
    ping_flood: bool = False
    continuation_flood: bool = False  # HEADERS without END_HEADERS, then CONTINUATIONs
    settings_flood: bool = False
    huge_headers: bool = False
    initial_window: int = 65_535  # what the client may send on a stream before an update
    never_open_window: bool = False


class _H2Protocol(asyncio.Protocol):
    def __init__(self, state: H2State, behaviour: Behaviour) -> None:
        self.state = state
        self.behaviour = behaviour
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, tuple[dict[bytes, bytes], bytearray]] = {}
        self.answered = 0
        self.window = asyncio.Event()
        self.h1 = False
        self.h1_buffer = b""
        self.tasks: set[asyncio.Task[None]] = set()
        self.active = 0  # streams being answered on this connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.connections[self.behaviour.name] += 1
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() != "h2":
            self.h1 = True
            return
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.behaviour.max_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.behaviour.initial_window,
            },
        )
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self.h1:
            self._h1(data)
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            assert self.transport is not None
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.requests[event.stream_id] = (dict(event.headers), bytearray())
            elif isinstance(event, h2.events.DataReceived):
                if event.stream_id in self.requests:
                    self.requests[event.stream_id][1].extend(event.data)
                if not self.behaviour.never_open_window:
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
            elif isinstance(event, h2.events.StreamEnded):
                task = asyncio.ensure_future(self.respond(event.stream_id))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif isinstance(event, h2.events.WindowUpdated):
                self.window.set()
            elif isinstance(event, h2.events.ConnectionTerminated):
                assert self.transport is not None
                self.transport.close()
        self.flush()

    def _h1(self, data: bytes) -> None:
        """ALPN chose http/1.1: a canned answer per request head."""
        self.h1_buffer += data
        assert self.transport is not None
        while b"\r\n\r\n" in self.h1_buffer:
            _, self.h1_buffer = self.h1_buffer.split(b"\r\n\r\n", 1)
            self.state.h1_requests += 1
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nh11")

    def connection_lost(self, exc: Exception | None) -> None:
        self.window.set()

    async def respond(self, stream_id: int) -> None:
        headers, body = self.requests.pop(stream_id, ({}, bytearray()))
        target = urlsplit(headers.get(b":path", b"/").decode())
        path, query = target.path, parse_qs(target.query)
        conn = self.conn
        if self.behaviour.ping_flood:
            for i in range(3000):
                conn.ping(b"%08d" % i)
            self.flush()
        if self.behaviour.settings_flood:
            for _ in range(3000):
                conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100})
            self.flush()
        if self.behaviour.continuation_flood and self.transport is not None:
            frames: list[hyperframe.frame.Frame] = [
                hyperframe.frame.HeadersFrame(stream_id, data=b"\x88")  # :status 200
            ]
            frames += [hyperframe.frame.ContinuationFrame(stream_id, data=b"") for _ in range(500)]
            self.transport.write(b"".join(frame.serialize() for frame in frames))
            return None
        if path == "/reset":
            conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return self.flush()
        if path.startswith("/refuse/") and path not in self.state.refused:
            self.state.refused.add(path)
            conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return self.flush()
        if path == "/h11":
            conn.reset_stream(stream_id, h2.errors.ErrorCodes.HTTP_1_1_REQUIRED)
            return self.flush()
        if path == "/hang":
            return None
        state = self.state
        state.active += 1
        self.active += 1
        state.max_active = max(state.max_active, state.active)
        state.max_active_one_connection = max(state.max_active_one_connection, self.active)
        try:
            if path == "/slow":
                await asyncio.sleep(float(query.get("s", ["0.1"])[0]))
        finally:
            state.active -= 1
            self.active -= 1
        status, payload = 200, b"ok"
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
        elif path.startswith("/bytes/"):
            payload = bytes(range(256)) * (int(path.rsplit("/", 1)[1]) // 256)
        elif path == "/echo":
            shown = [[k.decode(), v.decode()] for k, v in headers.items()]
            payload = json.dumps({"headers": shown, "body": len(body)}).encode()
        fields = [(b":status", str(status).encode()), (b"content-length", b"%d" % len(payload))]
        if self.behaviour.huge_headers:
            fields += [(b"x-big-%d" % i, b"v" * 4000) for i in range(300)]
        if self.transport is None or self.transport.is_closing():
            return None
        conn.send_headers(stream_id, fields, end_stream=not payload)
        await self._send(stream_id, payload)
        self.answered += 1
        if self.behaviour.goaway_after and self.answered >= self.behaviour.goaway_after:
            conn.close_connection(last_stream_id=stream_id)
            self.flush()
        return None

    async def _send(self, stream_id: int, payload: bytes) -> None:
        sent = 0
        while sent < len(payload):
            if self.transport is None or self.transport.is_closing():
                return
            try:
                window = min(
                    self.conn.local_flow_control_window(stream_id),
                    self.conn.max_outbound_frame_size,
                    len(payload) - sent,
                )
            except h2.exceptions.ProtocolError:
                return  # the client reset it
            if window <= 0:
                self.window.clear()
                await self.window.wait()
                continue
            end = sent + window == len(payload)
            self.conn.send_data(stream_id, payload[sent : sent + window], end_stream=end)
            sent += window
            self.flush()
            await asyncio.sleep(0)


BEHAVIOURS = [
    Behaviour("h2c"),
    Behaviour("few-streams", max_streams=3),
    Behaviour("goaway", goaway_after=10),
    Behaviour("ping-flood", ping_flood=True),
    Behaviour("settings-flood", settings_flood=True),
    Behaviour("continuation-flood", continuation_flood=True),
    Behaviour("huge-headers", huge_headers=True),
    Behaviour("no-window", never_open_window=True),  # 64 KiB, then the window stays shut
]


class H2ServerThread:
    """Every HTTP/2 server on a private loop in a daemon thread; ``ca`` trusts the TLS one."""

    def __init__(self, tls_dir: Path) -> None:
        self.state = H2State()
        self.ca = tls_dir / "h2-ca.pem"
        self.ports: dict[str, int] = {}
        self.loop = asyncio.new_event_loop()
        self._tls_dir = tls_dir
        self._ready = threading.Event()
        thread = threading.Thread(target=self._main, daemon=True, name="test-h2-servers")
        thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("HTTP/2 test servers did not start")

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        context.set_alpn_protocols(["h2", "http/1.1"])
        for behaviour in [*BEHAVIOURS, Behaviour("tls")]:
            tls = context if behaviour.name == "tls" else None
            server = await self.loop.create_server(
                lambda b=behaviour: _H2Protocol(self.state, b), "127.0.0.1", 0, ssl=tls
            )
            self.ports[behaviour.name] = server.sockets[0].getsockname()[1]
        slam = await asyncio.start_server(self._slam, "127.0.0.1", 0)
        self.ports["slam"] = slam.sockets[0].getsockname()[1]

    async def _slam(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accepts, waits 0.2 s, hangs up: every TLS handshake to it fails, slowly."""
        self.state.connections["slam"] += 1
        await asyncio.sleep(0.2)
        writer.close()

    def url(self, name: str, path: str = "/ok") -> str:
        scheme = "https" if name in ("tls", "slam") else "http"
        return f"{scheme}://127.0.0.1:{self.ports[name]}{path}"
