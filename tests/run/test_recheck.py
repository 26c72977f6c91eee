"""--recheck: failed requests tried again after the main pass; flaky ones marked."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from junitparser import JUnitXml

import afetch
from afetch.config import Config
from tests.conftest import check_record, run_cli
from tests.server import ServerThread


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_flaky_endpoint_passes_on_recheck(
    servers: ServerThread, tmp_path: Path, workers: str
) -> None:
    """Fails twice (one attempt each), passes on the second recheck: ok, flaky, 3 attempts;
    the ok requests stream first; JUnit marks it the Surefire way."""
    report = tmp_path / "junit.xml"
    flaky = f"{servers.base}/flaky/recheck-{workers}?fail=2&status=500"
    run = run_cli(
        flaky, f"{servers.base}/ok", "--retries", "0", "--recheck", "2",
        "--recheck-delay", "50ms", "--junit", str(report), "--summary", "--workers", workers,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    first, second = run.records
    assert first["index"] == 1  # the ok one was not held back
    assert (second["index"], second["ok"], second["flaky"], second["attempts"]) == (
        0,
        True,
        True,
        3,
    )
    check_record(second)
    assert "flaky: 1" in run.stderr
    (suite,) = list(JUnitXml.fromfile(str(report)))
    assert (suite.tests, suite.failures, suite.errors) == (2, 0, 0)
    assert "<flakyFailure" in report.read_text()


def test_a_request_that_keeps_failing_keeps_its_last_failure(servers: ServerThread) -> None:
    """A request failing every recheck keeps its last failure, attempts summed."""
    started = time.monotonic()
    run = run_cli(
        f"{servers.base}/status/500", "--retries", "0", "--recheck", "2",
        "--recheck-delay", "200ms",
        status=1,
    )  # fmt: skip
    assert time.monotonic() - started >= 0.4  # two rounds, each after the delay
    (record,) = run.records
    assert (record["ok"], record["status"], record["attempts"]) == (False, 500, 3)
    assert "flaky" not in record
    assert run.returncode == 1


def test_the_deadline_during_the_delay_delivers_what_is_held(servers: ServerThread) -> None:
    """The deadline (or a stop) during the wait ends the rounds: held failures are written."""
    started = time.monotonic()
    run = run_cli(
        f"{servers.base}/status/500", f"{servers.base}/ok", "--retries", "0",
        "--recheck", "3", "--recheck-delay", "30s", "--deadline", "1s",
        status=1,
    )  # fmt: skip
    assert time.monotonic() - started < 10
    assert sorted(r["index"] for r in run.records) == [0, 1]
    assert "--deadline reached" in run.stderr
    assert run.returncode == 1


async def test_the_library_rechecks(servers: ServerThread) -> None:
    """stream(recheck=N) rechecks as --recheck does."""
    results = await afetch.fetch_all(
        [f"{servers.base}/flaky/lib-recheck?fail=1&status=503"],
        retries=0,
        recheck=1,
        recheck_delay=0.01,
    )
    assert (results[0].ok, results[0].flaky, results[0].attempts) == (True, True, 2)
    run = afetch.stream([f"{servers.base}/ok"], Config(), recheck=1, recheck_delay=0.01)
    assert [r.ok async for r in run] == [True]
    assert run.stop_reason is None
