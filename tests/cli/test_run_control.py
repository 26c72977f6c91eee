"""--shard, --dedupe, --ordered, --deadline, --max-failures and --junit, run as a user would."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from junitparser import Error, Failure, JUnitXml, Properties, Skipped, TestCase

from tests.conftest import AFETCH, lines, run_cli
from tests.server import ServerThread


def test_shards_split_indices_and_their_union_is_everything(
    servers: ServerThread, tmp_path: Path
) -> None:
    """--shard K/N keeps global indices ≡ K-1 (mod N); all N shards cover each index once."""
    source = tmp_path / "urls.txt"
    source.write_text(
        "# header comment\n" + "".join(f"{servers.base}/ok?i={i}\n" for i in range(20))
    )
    seen: list[int] = []
    for k in (1, 2, 3):
        run = run_cli("-i", str(source), "--shard", f"{k}/3")
        indices = [record["index"] for record in run.records]
        assert all(index % 3 == k - 1 for index in indices)
        seen += indices
    assert sorted(seen) == list(range(20))


def test_host_shards_keep_each_host_on_one_shard(servers: ServerThread, tmp_path: Path) -> None:
    """--shard-key host: every request to a host lands in the same shard whatever its index
    (case and a trailing dot do not matter), indices stay input positions, the shards
    cover every index once, and an invalid line goes to exactly one shard."""
    port = servers.ports["app"]
    hosts = [f"h{n}.test" for n in range(12)]
    rows = [f"http://{hosts[i % 12]}:{port}/ok?i={i}" for i in range(60)]
    rows[7] = f"http://H7.TEST.:{port}/ok?i=7"  # the same host as h7.test
    rows[30] = "not a url at all"
    source = tmp_path / "urls.txt"
    source.write_text("".join(row + "\n" for row in rows))
    resolves = [arg for host in hosts for arg in ("--resolve", f"{host}:{port}:127.0.0.1")]
    resolves += ["--resolve", f"h7.test.:{port}:127.0.0.1"]
    shard_of_host: dict[str, int] = {}
    seen: list[int] = []
    for k in (1, 2, 3):
        run = run_cli(
            "-i", str(source), "--shard", f"{k}/3", "--shard-key", "host", *resolves, status=None
        )
        for record in run.records:
            seen.append(record["index"])
            assert record["url"] == rows[record["index"]].replace("H7.TEST", "h7.test")
            if record["index"] != 30:
                assert record["ok"], record
                host = rows[record["index"]].split("/")[2].split(":")[0].lower().rstrip(".")
                assert shard_of_host.setdefault(host, k) == k, host
    assert sorted(seen) == list(range(60))
    assert len(shard_of_host) == 12
    assert len(set(shard_of_host.values())) > 1


def test_the_host_hash_is_the_same_everywhere() -> None:
    """The shard of a host is fixed by its name alone (BLAKE2b), not by the process."""
    from afetch.inputs.select import host_shard

    assert [host_shard(f"host{n}.example", 4) for n in range(8)] == [2, 2, 0, 3, 2, 1, 2, 1]
    assert host_shard("Example.COM.", 7) == host_shard("example.com", 7)


def test_dedupe_skips_repeats_without_taking_an_index(servers: ServerThread) -> None:
    """--dedupe: a repeated method+URL emits nothing, takes no index, and is counted."""
    ok, other = f"{servers.base}/ok", f"{servers.base}/ok?b=1"
    stdin = lines(ok, other, ok, f"{servers.base}/ok#frag", f'{{"url": "{ok}", "method": "HEAD"}}')
    run = run_cli("--dedupe", "--summary", stdin=stdin)
    records = sorted(run.records, key=lambda r: r["index"])
    assert [(r["index"], r["method"], r["url"]) for r in records] == [
        (0, "GET", ok),
        (1, "GET", other),
        (2, "HEAD", ok),
    ]
    assert "duplicates skipped: 2" in run.stderr


def test_ordered_writes_records_in_input_order(servers: ServerThread) -> None:
    """--ordered: a slow first request holds the others back; output follows the input."""
    urls = [f"{servers.base}/slow?s=0.4"] + [f"{servers.base}/ok?i={i}" for i in range(30)]
    run = run_cli(
        *urls,
        "--ordered",
        "-c",
        "4",
        "--retries",
        "0",
        "-i",
        "-",
        stdin=lines("ftp://bad/"),
        status=1,
    )
    assert [record["index"] for record in run.records] == list(range(32))


def test_deadline_cancels_the_rest_and_fails_the_run(servers: ServerThread, tmp_path: Path) -> None:
    """--deadline: unfinished requests are cancelled records, the JUnit report is still written,
    and the run exits 1: cancelled is not ok (a CI run never passes by running out of time)."""
    report = tmp_path / "report.xml"
    started = time.monotonic()
    run = run_cli(
        f"{servers.base}/ok", f"{servers.base}/hang", f"{servers.base}/hang",
        "--deadline", "500ms", "--junit", str(report), "--summary",
        status=1,
    )  # fmt: skip
    assert time.monotonic() - started < 5
    assert run.returncode == 1, run.stderr
    kinds = sorted((r["error"] or {}).get("type", "ok") for r in run.records)
    assert kinds == ["cancelled", "cancelled", "ok"]
    assert "--deadline reached: 2 unfinished requests cancelled" in run.stderr
    (suite,) = list(JUnitXml.fromfile(str(report)))
    assert (suite.tests, suite.skipped) == (3, 2)


def test_max_failures_stops_early_and_exits_1(servers: ServerThread) -> None:
    """--max-failures 2: after two failures no new requests start."""
    urls = [f"{servers.base}/status/500?i={i}" for i in range(40)]
    run = run_cli(*urls, "--max-failures", "2", "-c", "1", "--retries", "0", status=1)
    assert run.returncode == 1
    assert 2 <= len(run.records) < 10
    assert "--max-failures reached" in run.stderr


def test_a_stop_while_requests_wait_for_room_leaves_no_internal_records(
    servers: ServerThread,
) -> None:
    """Requests waiting for one of an origin's first connections (it closes after each
    answer) when --max-failures stops the run: cancelled records, never internal ones
    (a waiter the wake had dropped was removed twice: ValueError)."""
    urls = [f"{servers.base}/close?s=0.05&i={i}" for i in range(80)]
    run = run_cli(
        *urls, "-c", "12", "--max-failures", "3", "--expect-status", "404", "--retries", "0",
        status=1,
    )  # fmt: skip
    kinds = {r["error"]["type"] for r in run.records}
    assert kinds <= {"http", "cancelled"}, kinds


def _properties(case: TestCase) -> dict[str, str]:
    """A test case's <properties>, as pytest and Surefire write them."""
    (properties,) = case.iterchildren(Properties)  # type: ignore[no-untyped-call]
    return {prop.name: prop.value for prop in properties}


def test_junit_report_reads_as_ci_tools_read_it(servers: ServerThread, tmp_path: Path) -> None:
    """Parsed with junitparser: network errors are errors, missed expectations failures,
    cancelled requests skipped; cases in input order; URL, status, final URL as properties."""
    report = tmp_path / "junit.xml"
    line = f'{{"url": "{servers.base}/status/404", "id": "api-health"}}'
    run = run_cli(
        f"{servers.base}/slow?s=0.3", f"{servers.base}/redirect/1", "--junit", str(report),
        "--expect-status", "200", "--retries", "0", "-i", "-",
        stdin=lines(line, "ftp://nope/\x01", "http://127.0.0.1:1/"),
        status=1,
    )  # fmt: skip
    assert run.returncode == 1
    xml = JUnitXml.fromfile(str(report))
    (suite,) = list(xml)
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (5, 1, 2, 0)
    cases = list(suite)
    assert [case.name for case in cases] == [
        f"{servers.base}/slow?s=0.3",  # slow, so last to finish: still first in the report
        f"{servers.base}/redirect/1",
        "api-health",
        "ftp://nope/\x01".replace("\x01", "\ufffd"),
        "http://127.0.0.1:1/",
    ]
    assert cases[0].is_passed
    props = _properties(cases[1])
    assert props["status"] == "200"
    assert props["final_url"].endswith("/ok")
    (failure,) = cases[2].result
    assert isinstance(failure, Failure)
    assert failure.type == "http"
    assert failure.text == "status 404 not in [200]"
    assert _properties(cases[2])["url"] == f"{servers.base}/status/404"
    assert [type(r) for r in cases[3].result] == [Error]
    assert cases[3].result[0].type == "invalid_input"
    assert cases[4].result[0].type == "connect"
    assert not list(tmp_path.glob("*.cases"))
    assert not list(tmp_path.glob("*.tmp"))


def test_junit_report_is_complete_after_sigint(servers: ServerThread, tmp_path: Path) -> None:
    """Ctrl-C mid-run still leaves a well-formed report with every record in it."""
    report = tmp_path / "junit.xml"
    proc = subprocess.Popen(
        [AFETCH, "--junit", str(report)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(lines(f"{servers.base}/ok", f"{servers.base}/hang"))
    proc.stdin.flush()
    proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    rest, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "afetch: interrupted: 1 request unfinished (cancelled records)" in stderr.decode()
    (suite,) = list(JUnitXml.fromfile(str(report)))
    assert (suite.tests, suite.failures, suite.skipped) == (2, 0, 1)
    assert isinstance(list(suite)[1].result[0], Skipped)
    assert orjson.loads(rest)["error"]["type"] == "cancelled"


def test_a_deadline_that_ends_everything_at_once_is_not_a_pass(servers: ServerThread) -> None:
    """--deadline 0 fetches nothing: exit 1, not a silent 0."""
    run = run_cli(f"{servers.base}/ok", "--deadline", "0", status=1)
    assert run.returncode == 1, run.stderr
    assert "--deadline reached" in run.stderr


def test_resume_with_unfinished_requests_says_how_many_and_exits_1(
    servers: ServerThread, tmp_path: Path
) -> None:
    """--resume cut short by --deadline says how many remain and exits 1."""
    out = tmp_path / "out.jsonl"
    run = run_cli(
        f"{servers.base}/ok", f"{servers.base}/hang", "-o", str(out), "--resume",
        "--deadline", "500ms",
        status=1,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert "1 request unfinished (no record)" in run.stderr
    assert len(out.read_text().splitlines()) == 1


def test_an_empty_input_says_so(tmp_path: Path) -> None:
    """An input with no requests says so on stderr."""
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    run = run_cli("-i", str(empty))
    assert run.returncode == 0
    assert "afetch: no requests in the input" in run.stderr


def test_head_1_ends_the_run_at_once_with_slow_requests_in_flight(
    servers: ServerThread,
) -> None:
    """The writer watches the pipe: `| head -1` is noticed without waiting for a write."""
    command = f"{AFETCH} {servers.base}/ok {servers.base}/hang | head -1"
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "-c", command + "; echo ${PIPESTATUS[0]} >&2"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert time.monotonic() - started < 3
    assert proc.stdout.count(b"\n") == 1
    assert proc.stderr.decode().strip().splitlines()[-1] in ("0", "141")
    assert b"Traceback" not in proc.stderr


def test_a_junit_report_in_a_new_directory_is_created(
    servers: ServerThread, tmp_path: Path
) -> None:
    """--junit into a missing directory creates it."""
    report = tmp_path / "reports" / "deep" / "junit.xml"
    run = run_cli(f"{servers.base}/ok", "--junit", str(report))
    assert run.returncode == 0
    assert "<testcase" in report.read_text()


def test_a_junit_path_that_cannot_be_made_is_exit_2_before_fetching(
    servers: ServerThread, tmp_path: Path
) -> None:
    """A --junit path that cannot be created is exit 2 before any request."""
    (tmp_path / "file").write_text("")
    run = run_cli(f"{servers.base}/ok", "--junit", str(tmp_path / "file" / "junit.xml"), status=2)
    assert run.returncode == 2
    assert run.records == []
    assert "afetch: error: --junit" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_junit_report_that_fails_midway_stops_the_run(
    servers: ServerThread, tmp_path: Path
) -> None:
    """A JUnit report that cannot be written ends the run with one message."""
    report = tmp_path / "junit.xml"
    (tmp_path / "junit.xml.cases").symlink_to("/dev/full")  # ENOSPC on the first write
    urls = [f"{servers.base}/slow?s=0.2&i={i}" for i in range(30)]
    run = run_cli(*urls, "-c", "2", "--junit", str(report), status=1)
    assert run.returncode == 1
    assert "afetch: error: --junit" in run.stderr
    assert "No space left on device" in run.stderr
    assert len(run.records) < 30
    assert not report.exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_max_host_errors_skips_a_dead_hosts_other_requests(
    servers: ServerThread, workers: str
) -> None:
    """3 refusals in a row on one host: its 7 other requests are skipped, other hosts go on."""
    dead = [f"http://127.0.0.1:1/{i}" for i in range(10)]
    alive = [f"{servers.base}/ok?i={i}" for i in range(5)]
    run = run_cli(
        *dead, *alive, "-c", "1", "--retries", "0", "--max-host-errors", "3",
        "--workers", workers,
        status=1,
    )  # fmt: skip
    assert run.returncode == 1
    kinds = [(r["error"] or {}).get("type", "ok") for r in sorted(run.records, key=_index)]
    assert kinds == ["connect"] * 3 + ["skipped"] * 7 + ["ok"] * 5
    skipped = next(r for r in run.records if r["error"] and r["error"]["type"] == "skipped")
    assert skipped["attempts"] == 0
    assert "3 connection failures in a row on 127.0.0.1:1" in skipped["error"]["message"]


def test_a_response_resets_the_host_error_count() -> None:
    """Failures must be in a row: any response from the host starts the count again."""
    from afetch.errors import ErrorInfo, ErrorKind
    from afetch.models import FetchResult
    from afetch.pacing import HostErrors

    def result(kind: ErrorKind | None, status: int | None = None) -> FetchResult:
        error = ErrorInfo(kind, "x") if kind else None
        return FetchResult(0, "u", "GET", kind is None, status, error, 1, 1.0)

    errors, host = HostErrors(2), ("a.test", 80)
    errors.observe(host, result(ErrorKind.TIMEOUT))
    errors.observe(host, result(ErrorKind.HTTP, 500))  # a response: not in a row any more
    errors.observe(host, result(ErrorKind.CONNECT))
    assert not errors.given_up(host)
    errors.observe(host, result(ErrorKind.PROTOCOL))  # not connection-level: neither counts
    errors.observe(host, result(ErrorKind.DNS))
    assert errors.given_up(host)
    assert not errors.given_up(("b.test", 80))
    assert not HostErrors(None).given_up(host)


def _index(record: dict[str, Any]) -> int:
    return int(record["index"])


@pytest.mark.parametrize(
    ("limit", "status", "said"),
    [
        ("5%", 0, "threshold ok: error rate 5% <= 5% [1 of 20 not ok]"),
        ("4", 1, "threshold failed: error rate 5% > 4% (by 1 pp) [1 of 20 not ok]"),
    ],
)
def test_max_error_rate_decides_the_exit_status(
    servers: ServerThread, limit: str, status: int, said: str
) -> None:
    """--max-error-rate, not every record, decides the exit status."""
    urls = [f"{servers.base}/ok?i={i}" for i in range(19)] + [f"{servers.base}/status/500"]
    run = run_cli(*urls, "--retries", "0", "--max-error-rate", limit, "--summary", status=None)
    assert run.returncode == status, run.stderr
    assert said in run.stderr


@pytest.mark.parametrize(("limit", "status"), [("100ms", 1), ("5s", 0)])
def test_max_p95_judges_ok_records(servers: ServerThread, limit: str, status: int) -> None:
    """--max-p95 judges the latency of ok records only."""
    urls = [f"{servers.base}/slow?s=0.2&i={i}" for i in range(5)]
    run = run_cli(*urls, "--max-p95", limit, status=None)
    assert run.returncode == status, run.stderr
    if status:
        assert "threshold failed: p95 latency 2" in run.stderr
        assert "> 100ms (by 1" in run.stderr


@pytest.mark.parametrize(("minimum", "status"), [("3", 0), ("4", 1)])
def test_min_requests_fails_an_emptied_list(
    servers: ServerThread, minimum: str, status: int
) -> None:
    """--min-requests fails a run whose list lost its lines."""
    urls = [f"{servers.base}/ok?i={i}" for i in range(3)]
    run = run_cli(*urls, "--min-requests", minimum, status=None)
    assert run.returncode == status, run.stderr
    if status:
        assert "threshold failed: 3 requests < 4 (by 1)" in run.stderr


def test_min_requests_with_an_empty_input(tmp_path: Path) -> None:
    """--min-requests makes an empty input a failure."""
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n")
    run = run_cli("-i", str(empty), "--min-requests", "1", status=1)
    assert run.returncode == 1
    assert "no requests in the input" in run.stderr
    assert "threshold failed: 0 requests < 1" in run.stderr


def test_a_bad_percentage_is_a_usage_error() -> None:
    """A percentage that is not one is a usage error naming the option."""
    run = run_cli("http://127.0.0.1:1/", "--max-error-rate", "150%", status=2)
    assert run.returncode == 2
    assert "--max-error-rate" in run.stderr


def test_a_host_shard_less_what_resume_found_done() -> None:
    """--resume with --shard-key host: the host's shard, minus the indices already recorded."""
    from yarl import URL

    from afetch.inputs.select import host_shard, selection
    from afetch.models import FetchSpec

    specs = [
        FetchSpec(i, f"http://h{i % 5}.test/", URL(f"http://h{i % 5}.test/")) for i in range(20)
    ]
    mine = host_shard("h1.test", 3)
    select = selection((mine + 1, 3), "host", done={1, 2, 3})
    assert select is not None
    expected = [
        i for i in range(20) if i not in {1, 2, 3} and host_shard(f"h{i % 5}.test", 3) == mine
    ]
    assert [spec.index for spec in specs if select(spec)] == expected
    assert 6 in expected  # h1.test's next request
