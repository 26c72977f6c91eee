"""--workers N: the guarantees of one process, kept across several."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from afetch.run.processes import shares
from tests.conftest import AFETCH, check_record, kill_then_resume, lines, run_cli
from tests.server import ServerThread


def test_concurrency_shares_add_up_exactly() -> None:
    """-c 7 over 3 workers is 3+2+2; never more than asked in total."""
    assert shares(7, 3) == [3, 2, 2]
    assert shares(2, 4) == [1, 1, 0, 0]
    assert sum(shares(1000, 7)) == 1000


def test_one_record_per_index_with_json_lines_and_bad_input(servers: ServerThread) -> None:
    """Every index exactly once, ids echoed, expectations applied, invalid lines kept."""
    requests = [
        json.dumps({"url": f"{servers.base}/ok?i={i}", "id": i, "expect": {"status": [200]}})
        if i % 3
        else f"{servers.base}/status/404?i={i}"
        for i in range(90)
    ]
    run = run_cli("--workers", "3", "-c", "12", stdin=lines(*requests, "ftp://bad/"), status=1)
    records = run.records
    assert sorted(r["index"] for r in records) == list(range(91))
    assert run.returncode == 1
    by_index = run.by_index()
    assert by_index[1]["id"] == 1
    assert by_index[1]["ok"] is True
    assert by_index[3]["failed"] == ["status 404 not in [200-399]"]
    assert by_index[90]["error"]["type"] == "invalid_input"


def test_global_concurrency_holds_across_workers(servers: ServerThread) -> None:
    """-c 6 --workers 2: the server never sees more than 6 at once."""
    urls = [f"{servers.base}/count/workers-cap?s=0.1"] * 40
    run = run_cli(*urls, "-c", "6", "--workers", "2")
    assert run.returncode == 0
    assert servers.state.max_inflight["workers-cap"] == 6


def test_per_host_cap_holds_across_workers(servers: ServerThread) -> None:
    """--per-host 2 --workers 3: one worker owns each host, so the cap is exact."""
    urls = [f"{servers.base}/count/workers-host?s=0.1"] * 20
    run = run_cli(*urls, "-c", "12", "--workers", "3", "--per-host", "2")
    assert run.returncode == 0
    assert servers.state.max_inflight["workers-host"] == 2


def test_ordered_across_workers(servers: ServerThread) -> None:
    """--ordered with workers: input order, a slow first request included."""
    urls = [f"{servers.base}/slow?s=0.3"] + [f"{servers.base}/ok?i={i}" for i in range(40)]
    run = run_cli(*urls, "--ordered", "--workers", "2", "-c", "4")
    assert [r["index"] for r in run.records] == list(range(41))


def test_sigint_with_workers_flushes_cancelled_records(servers: ServerThread) -> None:
    """Ctrl-C: workers stop theirs, each unfinished request is one cancelled record, exit 130."""
    proc = subprocess.Popen(
        [AFETCH, "--workers", "2", "-c", "4"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # like a terminal: the signal goes to the whole group
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(lines(f"{servers.base}/ok", *[f"{servers.base}/hang"] * 4))
    proc.stdin.flush()
    assert orjson.loads(proc.stdout.readline())["ok"] is True
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    rest, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    records = [check_record(orjson.loads(line)) for line in rest.splitlines()]
    assert sorted(r["index"] for r in records) == [1, 2, 3, 4]
    assert {r["error"]["type"] for r in records} == {"cancelled"}
    assert {r["attempts"] for r in records} == {1}
    # Only the coordinator speaks: no worker's traceback or message.
    assert stderr.decode().splitlines() == [
        "afetch: interrupted: 4 requests unfinished (cancelled records);"
        " -o FILE --resume makes a run resumable"
    ]


def test_kill_9_and_resume_with_workers_is_exactly_once(
    servers: ServerThread, tmp_path: Path
) -> None:
    """Only the coordinator writes records, so --resume stays exactly-once with workers."""
    total = 200
    source = tmp_path / "urls.txt"
    source.write_text("".join(f"{servers.base}/slow?s=0.0{i % 10}&w={i}\n" for i in range(total)))
    out = tmp_path / "out.jsonl"
    final, records = kill_then_resume(
        source,
        out,
        ["--workers", "2", "-c", "10"],
        final_extra=["--workers", "2"],
        kills=3,
        seed=11,
        window=(0.6, 1.2),
    )
    assert final.returncode == 0, final.stderr
    assert sorted(r["index"] for r in records) == list(range(total))


def test_huge_escaped_bodies_pass_through_workers(servers: ServerThread) -> None:
    """A text body of control characters grows 6x as JSON; the coordinator still reads it."""
    url = f"{servers.base}/control-chars?n=400000"
    run = run_cli(url, url, "--workers", "2", "--body", "--max-body", "500KB")
    assert run.returncode == 0, run.stderr
    assert [len(r["body"]) for r in run.records] == [400_000, 400_000]


@pytest.mark.timeout(60)
def _kill_workers(
    servers: ServerThread, tmp_path: Path, victims: int
) -> tuple[list[int], str, int]:
    """Run 80 hanging requests over 2 workers, SIGKILL ``victims`` of them mid-run."""
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"{servers.base}/hang?i={i}\n" for i in range(80)))
    proc = subprocess.Popen(
        [AFETCH, "--workers", "2", "-c", "20", "-t", "0.5s", "--retries", "0", "-i", str(urls)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    children: list[int] = []
    while len(children) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        found = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
        children = [int(pid) for pid in found.stdout.split()]
    assert len(children) == 2
    time.sleep(0.8)  # requests are in flight on both
    for child in children[:victims]:
        os.kill(child, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=40)
    indices = sorted(orjson.loads(line)["index"] for line in stdout.splitlines())
    return indices, stderr.decode(), proc.returncode


def test_a_worker_killed_mid_run_loses_nothing(servers: ServerThread, tmp_path: Path) -> None:
    """SIGKILL of one worker (the OOM killer's way): its requests run again on the other,
    every index is recorded exactly once, stderr says what happened, exit 1."""
    indices, stderr, status = _kill_workers(servers, tmp_path, victims=1)
    assert indices == list(range(80))
    assert "died (signal 9)" in stderr
    assert status == 1


def test_every_worker_killed_ends_the_run_saying_so(servers: ServerThread, tmp_path: Path) -> None:
    """No survivor: the requests in flight get records, the run ends at once with a message."""
    indices, stderr, status = _kill_workers(servers, tmp_path, victims=2)
    assert indices == sorted(set(indices))
    assert 0 < len(indices) < 80
    assert "afetch: error: every worker process died" in stderr
    assert "Traceback" not in stderr
    assert "pipe closed" not in stderr
    assert status == 1


def test_a_line_near_the_line_limit_reaches_a_worker_whole(servers: ServerThread) -> None:
    """Requests go to workers length-prefixed: a 65 000-byte JSON line is not cut up."""
    line = orjson.dumps({"url": f"{servers.base}/echo?key=long-line", "body": "x" * 65_000})
    run = run_cli("--workers", "2", stdin=line + b"\n")
    (record,) = run.records
    assert record["status"] == 200, record
    (received,) = servers.state.echoes["long-line"]
    assert len(received["body"]) == 65_000


def test_a_workers_record_comes_back_as_the_whole_result() -> None:
    """Every field survives the pipe, so every sink sees the same result with --workers."""
    from dataclasses import replace

    from afetch.errors import ErrorInfo, ErrorKind
    from afetch.models import FetchResult
    from afetch.sinks.records import dumps

    result = FetchResult(
        index=7,
        url="http://a.test/x",
        method="GET",
        ok=False,
        status=200,
        error=None,
        attempts=2,
        elapsed_ms=12.5,
        id={"k": 1},
        final_url="http://a.test/y",
        redirects=((301, "http://a.test/y"),),
        reason="OK",
        content_type="text/plain",
        size=3,
        truncated=True,
        timing={"dns_ms": 1.0, "connect_ms": None},
        headers={"set-cookie": ["a", "b"]},
        body=b"h\xc3\xa9",
        charset="utf-8",
        sha256="00",
        saved_to="/tmp/x",
        failed=("status 200 not in 204",),
        remote_ip="127.0.0.1",
        http_version="1.1",
        reused=True,
    )
    for original in (
        result,
        replace(result, body=b"\xff\x00", charset=None),
        replace(
            result,
            status=None,
            body=None,
            charset=None,
            reason=None,
            content_type=None,
            size=None,
            http_version=None,
            reused=None,
            error=ErrorInfo(ErrorKind.TIMEOUT, "slow"),
        ),
    ):
        line = dumps(original.to_record())
        assert FetchResult.from_line(line) == replace(original, line=line)
