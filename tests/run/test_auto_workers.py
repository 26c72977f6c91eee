"""--workers auto: one process, and more while its loop is saturated, the guarantees kept.

Growth is triggered here by lowering the thresholds (the test's process, or
a real afetch process started through a script that lowers them): a test
cannot wait for two seconds of a saturated core.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

import afetch.run.engine as engine
from afetch.config import Config
from afetch.run.engine import may_grow
from tests.conftest import check_record, run_cli
from tests.server import ServerThread

#: afetch's CLI in a real process that grows at once (every load sample counts as saturated).
EAGER = """
import afetch.run.engine as engine
engine.GROW_AFTER, engine.SATURATED, engine.LOAD_SAMPLE = 0.0, 0.0, 0.05
engine.FRESH_SHARE = 0.0
engine.usable_cores = lambda: 3
from afetch.cli import main
main()
"""


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's runs grow at their first load sample, up to 3 processes."""
    monkeypatch.setattr(engine, "GROW_AFTER", 0.0)
    monkeypatch.setattr(engine, "SATURATED", 0.0)
    monkeypatch.setattr(engine, "LOAD_SAMPLE", 0.05)
    monkeypatch.setattr(engine, "FRESH_SHARE", 0.0)
    monkeypatch.setattr(engine, "usable_cores", lambda: 3)


def _children(parent: int | None = None) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(parent or os.getpid())], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]


def _wait_for_children(parent: int, count: int) -> list[int]:
    """The worker processes ``parent`` took on, once there are ``count`` (10 s at most)."""
    deadline = time.monotonic() + 10
    children = _children(parent)
    while len(children) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        children = _children(parent)
    return children


def _grown_run_on_hung_requests(servers: ServerThread, stdout: int) -> subprocess.Popen[bytes]:
    """A real afetch that grows at once (3 processes), 30 requests that never finish."""
    proc = subprocess.Popen(
        [sys.executable, "-c", EAGER, "-c", "6"],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stdout,
        start_new_session=True,  # like a terminal: a signal goes to the whole group
    )
    assert proc.stdin is not None
    proc.stdin.write(b"".join(b"%s/hang?i=%d\n" % (servers.base.encode(), i) for i in range(30)))
    proc.stdin.flush()
    assert len(_wait_for_children(proc.pid, 2)) == 2
    return proc


@pytest.mark.usefixtures("eager")
def test_a_grown_run_keeps_the_concurrency_and_every_index(servers: ServerThread) -> None:
    """-c 6 over three processes: never more than 6 at the server, each index once."""
    urls = [f"{servers.base}/count/auto-cap?s=0.05&i={i}" for i in range(150)]
    run = run_cli(*urls, "-c", "6", "--verbose")
    assert "fetching in 2 processes (-c 3 here)" in run.stderr
    assert "fetching in 3 processes (-c 1 here)" in run.stderr
    assert sorted(r["index"] for r in run.records) == list(range(150))
    assert all(r["ok"] for r in run.records)
    assert servers.state.max_inflight["auto-cap"] == 6
    assert _children() == []  # the worker processes are gone


@pytest.mark.usefixtures("eager")
def test_a_grown_run_keeps_input_order_and_invalid_lines(servers: ServerThread) -> None:
    """A run that grew keeps --ordered order and its invalid_input record, every index once."""
    urls = [f"{servers.base}/slow?s=0.3"] + [f"{servers.base}/ok?i={i}" for i in range(80)]
    run = run_cli(
        "--ordered",
        "-c",
        "4",
        "--verbose",
        stdin=b"\n".join([*map(str.encode, urls), b"ftp://x/"]),
        status=1,
    )
    assert "fetching in 2 processes" in run.stderr
    assert [r["index"] for r in run.records] == list(range(82))
    assert run.records[-1]["error"]["type"] == "invalid_input"


@pytest.mark.usefixtures("eager")
def test_no_growth_where_one_process_must_see_everything(servers: ServerThread) -> None:
    """--per-host (and --rate, a cookie jar...): a host's requests stay in one process."""
    urls = [f"{servers.base}/count/auto-host?s=0.05"] * 30
    run = run_cli(*urls, "-c", "8", "--per-host", "2", "--verbose")
    assert "processes" not in run.stderr
    assert servers.state.max_inflight["auto-host"] == 2
    assert not may_grow(Config(rate=5))
    assert not may_grow(Config(host_interval=0.5))
    assert not may_grow(Config(concurrency=1))
    assert may_grow(Config())


def test_growth_waits_for_new_connections(
    servers: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saturated, but the answers reuse connections (one keep-alive host): no process is
    taken on; a server that closes after each answer makes every one new: it grows.
    (Three samples in a row: the first answers are on new connections anyway.)"""
    monkeypatch.setattr(engine, "GROW_AFTER", 0.25)
    monkeypatch.setattr(engine, "SATURATED", 0.0)
    monkeypatch.setattr(engine, "LOAD_SAMPLE", 0.1)
    monkeypatch.setattr(engine, "usable_cores", lambda: 2)
    kept = run_cli(*[f"{servers.base}/slow?s=0.02&i={i}" for i in range(200)], "-c", "4",
                   "--verbose")  # fmt: skip
    assert "processes" not in kept.stderr
    closed = run_cli(*[f"{servers.base}/close?s=0.02&i={i}" for i in range(200)], "-c", "4",
                     "--verbose")  # fmt: skip
    assert "fetching in 2 processes" in closed.stderr


def test_a_short_run_stays_one_process(servers: ServerThread) -> None:
    """The default thresholds: a health check never starts a worker process."""
    run = run_cli(*[f"{servers.base}/ok?i={i}" for i in range(20)], "--verbose")
    assert "processes" not in run.stderr
    assert len(run.records) == 20


@pytest.mark.usefixtures("eager")
def test_a_helper_killed_mid_run_loses_nothing(servers: ServerThread, tmp_path: Path) -> None:
    """SIGKILL of a worker process: its requests are fetched by the coordinator, each
    index once, stderr says so, exit 1."""
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"{servers.base}/slow?s=0.2&i={i}\n" for i in range(120)))
    proc = subprocess.Popen(
        [sys.executable, "-c", EAGER, "-c", "12", "-t", "5s", "-i", str(urls)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    children = _wait_for_children(proc.pid, 1)
    assert children
    time.sleep(0.5)  # requests in flight there
    os.kill(children[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=40)
    records = [check_record(orjson.loads(line)) for line in stdout.splitlines()]
    assert sorted(r["index"] for r in records) == list(range(120))
    assert all(r["ok"] for r in records), [r for r in records if not r["ok"]][:2]
    assert "died (signal 9): its" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert proc.returncode == 1


def test_ctrl_c_in_a_grown_run(servers: ServerThread) -> None:
    """SIGINT to the group: one record per request read, cancelled ones included, 130,
    and no worker process left behind."""
    proc = _grown_run_on_hung_requests(servers, subprocess.PIPE)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    records = [check_record(orjson.loads(line)) for line in stdout.splitlines()]
    indices = sorted(r["index"] for r in records)
    assert indices == sorted(set(indices))
    assert len(indices) == 12  # what was read: twice -c, the input waits behind it
    assert {r["error"]["type"] for r in records} == {"cancelled"}
    assert "Traceback" not in stderr.decode()
    found = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
    assert found.stdout.split() == []


def test_kill_9_of_the_coordinator_takes_its_workers(servers: ServerThread) -> None:
    """Worker processes do not outlive a coordinator killed with SIGKILL."""
    proc = _grown_run_on_hung_requests(servers, subprocess.DEVNULL)
    proc.kill()
    proc.wait(timeout=10)
    assert proc.stdin is not None
    proc.stdin.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
        if not found.stdout.split():
            break
        time.sleep(0.05)
    assert found.stdout.split() == []
