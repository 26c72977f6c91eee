"""Shared fixtures: the local servers, a CLI runner, and record validation."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from afetch.config import Config
from afetch.http.dns import Resolver
from afetch.schema import RECORD_SCHEMA
from tests.dnsserver import DnsServer
from tests.server import ServerThread

AFETCH = str(Path(sys.executable).with_name("afetch"))
_VALIDATOR = jsonschema.Draft202012Validator(RECORD_SCHEMA)


#: Names looked up through the system's resolver during the current test.
_LEAKED: list[object] = []


def _suite_answers(name: str) -> list[str] | None:
    """The suite's own DNS: ``*.test`` names are this machine, everything else NXDOMAIN."""
    return ["127.0.0.1"] if name == "localhost" or name.endswith(".test") else None


@pytest.fixture(scope="session", autouse=True)
def suite_dns() -> Iterator[DnsServer]:
    """Nothing may leave this machine: every lookup goes to the suite's DNS server.

    CLI processes get ``AFETCH_DNS_SERVERS``; in this process a resolver built
    without servers gets the suite's, and ``socket.getaddrinfo`` of a name
    (the system's resolver) is recorded and fails the test that made it.
    """
    server = DnsServer(_suite_answers).start()
    patch = pytest.MonkeyPatch()
    patch.setenv("AFETCH_DNS_SERVERS", server.address)
    original = Resolver.__init__

    def init(self: Resolver, *args: Any, nameservers: tuple[str, ...] = (), **kw: Any) -> None:
        original(self, *args, nameservers=nameservers or (server.address,), **kw)

    patch.setattr(Resolver, "__init__", init)
    system = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kw: Any) -> Any:
        if not _is_local(host):
            _LEAKED.append(host)
        return system(host, *args, **kw)

    patch.setattr(socket, "getaddrinfo", guarded)
    yield server
    patch.undo()
    server.stop()


def _is_local(host: object) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text == "localhost":
        return True
    try:
        ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True)
def _no_lookup_through_the_system() -> Iterator[None]:
    _LEAKED.clear()
    yield
    assert not _LEAKED, f"looked up through the system's resolver: {_LEAKED}"


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> ServerThread:
    return ServerThread(tls_dir=tmp_path_factory.mktemp("tls")).start()


@pytest.fixture(autouse=True)
def _fresh_server_state(request: pytest.FixtureRequest) -> None:
    """Each test starts with empty server counters (a test may run once per transport)."""
    if "servers" in request.fixturenames:
        servers: ServerThread = request.getfixturevalue("servers")
        servers.state.__init__()  # type: ignore[misc]  # in place: the app holds this object


#: The transport a test runs under (see ``each_transport``); empty: the default.
_http_client: list[Transport] = []


class Transport(str):
    """A transport a test runs through: its name, the Config options and CLI arguments
    that choose it (``each_transport`` also applies them to every Config and CLI run)."""

    @property
    def options(self) -> dict[str, str]:
        return {"http_client": str(self)}

    @property
    def args(self) -> tuple[str, str]:
        return ("--http-client", str(self))


@pytest.fixture(params=["lean", "aiohttp"])
def each_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Transport:
    """Runs a test once per transport: library Configs and CLI runs both use it.

    Fetch-level test modules use it for every test (``pytestmark``), so a change
    that breaks either transport fails the suite; a test there that reaches no
    transport says so with ``transport_free`` and runs once.
    """
    client = Transport(request.param)
    original = Config.__init__

    def init(self: Config, *args: Any, **kwargs: Any) -> None:
        for key, value in client.options.items():
            kwargs.setdefault(key, value)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Config, "__init__", init)
    monkeypatch.setattr(sys.modules[__name__], "_http_client", [client])
    return client


#: For a test in a module run through both transports that never reaches one
#: (parsing, usage errors, pure functions): once is enough.
transport_free = pytest.mark.parametrize("each_transport", ["lean"], indirect=True)


def check_record(record: dict[str, Any]) -> dict[str, Any]:
    """Every record the suite sees is validated against the published schema."""
    _VALIDATOR.validate(record)
    assert (record["error"] or {}).get("type") != "internal", record
    return record


@dataclass
class CliRun:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def records(self) -> list[dict[str, Any]]:
        return [check_record(orjson.loads(line)) for line in self.stdout.splitlines()]

    def by_index(self) -> dict[int, dict[str, Any]]:
        return {record["index"]: record for record in self.records}


def run_cli(
    *args: str,
    stdin: bytes | None = b"",
    timeout: float = 60,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    process: bool = False,
    status: int | None = 0,
) -> CliRun:
    """Run afetch as a user would, and parse what it printed.

    An exit status other than ``status`` fails the test at once, with what
    afetch said (httpie's ``tolerate_error_exit_status``): ``status=None``
    takes any, for tests that look at it themselves.

    In this process through the CLI's own entry point (click's test isolation:
    stdin, stdout, stderr and the environment swapped), unless ``process`` or
    ``preexec_fn`` ask for a real one: signals, pipes, closed descriptors,
    resource limits and exit codes of the installed ``afetch`` need one.
    """
    client = list(_http_client[0].args) if _http_client else []
    if process or preexec_fn is not None:
        proc = subprocess.run(
            [AFETCH, *client, *args],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            check=False,
            preexec_fn=preexec_fn,
        )
        run = CliRun(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))
    else:
        run = _in_process([*client, *args], stdin or b"", env)
    if status is not None and run.returncode != status:
        raise AssertionError(f"afetch exited {run.returncode}, not {status}: {run.stderr[-2000:]}")
    return run


def _in_process(argv: list[str], stdin: bytes, env: dict[str, str] | None) -> CliRun:
    from click.testing import CliRunner

    from afetch import cli

    code = 0
    with CliRunner().isolation(input=stdin, env=env) as (out, err, _):
        saved, sys.argv = sys.argv, ["afetch", *argv]
        try:
            cli.main()
        except SystemExit as done:
            if isinstance(done.code, int) or done.code is None:
                code = done.code or 0
            else:
                sys.stderr.write(f"{done.code}\n")
                code = 1
        finally:
            sys.argv = saved
            sys.stdout.flush()
            sys.stderr.flush()
        return CliRun(code, out.getvalue(), err.getvalue().decode("utf-8", "replace"))


def lines(*items: str) -> bytes:
    return "".join(f"{item}\n" for item in items).encode()


def records_of(results: Sequence[Any]) -> list[dict[str, Any]]:
    return [check_record(result.to_record()) for result in results]


def kill_then_resume(
    source: Path,
    out: Path,
    extra: Sequence[str],
    *,
    final_extra: Sequence[str] = (),
    kills: int,
    seed: int,
    window: tuple[float, float],
) -> tuple[CliRun, list[dict[str, Any]]]:
    """SIGKILL afetch --resume (and any workers) at random moments, then resume to the end."""
    rng = random.Random(seed)
    base = ["-i", str(source), "-o", str(out), "--resume"]
    for _ in range(kills):
        proc = subprocess.Popen(
            [AFETCH, *base, *extra], stderr=subprocess.DEVNULL, start_new_session=True
        )
        time.sleep(rng.uniform(*window))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: workers die too
        proc.wait(10)
    final = run_cli(*base, *final_extra)
    records = [check_record(orjson.loads(line)) for line in out.read_bytes().splitlines()]
    return final, records
