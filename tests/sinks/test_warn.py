"""--warn-on: failures only for listed reasons are warnings, counted apart, never failing."""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from afetch.errors import ErrorKind
from afetch.warn import parse_warn_on
from tests.conftest import lines, run_cli, transport_free
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def test_warnings_are_reported_and_do_not_fail_the_run(
    servers: ServerThread, tmp_path: Path
) -> None:
    """A 429, a 503, a timeout and a slow answer warn; the run exits 0, the records say
    warn: true (ok false), the summary, Markdown, GitHub annotations and JUnit count them
    apart; a 503 that also missed --expect-body is not covered by 5xx."""
    base = servers.base
    summary = tmp_path / "step.md"
    junit, markdown = tmp_path / "r.xml", tmp_path / "r.md"
    stdin = lines(
        f"{base}/ok",
        f"{base}/status/429",
        f"{base}/status/503",
        f"{base}/hang",
        f"{base}/slow?s=0.3",
    )
    common = (
        "--retries", "0", "-t", "1", "--max-latency", "150ms", "--summary",
        "--warn-on", "timeout, 429,5xx,slow", "--junit", str(junit),
        "--markdown", str(markdown), "--github", "--no-progress",
    )  # fmt: skip
    run = run_cli(*common, stdin=stdin, env={"GITHUB_STEP_SUMMARY": str(summary)})
    by_url = {record["url"].removeprefix(base): record for record in run.records}
    assert by_url["/ok"]["ok"] is True
    assert "warn" not in by_url["/ok"]
    for path in ("/status/429", "/status/503", "/hang", "/slow?s=0.3"):
        assert (by_url[path]["ok"], by_url[path]["warn"]) == (False, True), path
    assert by_url["/hang"]["error"]["type"] == "timeout"
    assert "afetch: 5 requests, 1 ok, 0 not ok, 4 warned" in run.stderr
    assert "  warned (4, --warn-on):" in run.stderr
    text = markdown.read_text()
    assert text.startswith("## afetch: 5 checks, 1 ok, 0 not ok, 4 warned — ✅ passed")
    assert "### Warnings" in text
    assert "### Failures" not in text
    warnings = [line for line in run.stderr.splitlines() if line.startswith("::warning")]
    assert len(warnings) == 4
    assert not [line for line in run.stderr.splitlines() if line.startswith("::error")]
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    skipped = [case for case in suite if any(isinstance(r, Skipped) for r in case.result)]
    assert len(skipped) == 4
    assert all(case.result[0].message.startswith("warning (") for case in skipped)
    records = tmp_path / "records.jsonl"
    records.write_bytes(run.stdout)
    rebuilt = tmp_path / "rebuilt.md"
    run_cli("--report", str(records), "--markdown", str(rebuilt))  # exit 0: only warnings
    assert rebuilt.read_text() == text

    # The same run with one real failure and a 503 that also misses --expect-body: exit 1.
    run = run_cli(
        *common, "--expect-body", "status", "--expect-status", "2xx",
        stdin=lines(f"{base}/status/503", f"{base}/status/404", f"{base}/ok"),
        env={"GITHUB_STEP_SUMMARY": str(summary)}, status=1,
    )  # fmt: skip
    by_url = {record["url"].removeprefix(base): record for record in run.records}
    assert by_url["/status/503"]["warn"] is True  # its body says "status 503": matched
    assert "warn" not in by_url["/status/404"]
    assert "warn" not in by_url["/ok"]  # body "ok" misses --expect-body: a real failure
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    outcomes = sorted(type(case.result[0]).__name__ for case in suite)
    assert outcomes == ["Failure", "Failure", "Skipped"]
    assert not any(isinstance(case.result[0], Error) for case in suite)
    assert any(isinstance(case.result[0], Failure) for case in suite)


def test_a_warning_is_not_an_error_for_the_thresholds(servers: ServerThread) -> None:
    """--max-error-rate counts failed records only; warned ones are counted apart."""
    stdin = lines(*[f"{servers.base}/ok"] * 3, f"{servers.base}/status/429")
    args = ("--retries", "0", "--max-error-rate", "0%", "--summary", "--no-progress")
    run = run_cli(*args, "--warn-on", "429", stdin=stdin)
    assert "error rate 0% <= 0% [0 of 4 not ok]" in run.stderr
    failing = run_cli(*args, stdin=stdin, status=1)
    assert "error rate 25% > 0%" in failing.stderr


def test_max_failures_and_the_baseline_do_not_count_warnings(
    servers: ServerThread, tmp_path: Path
) -> None:
    """--max-failures stops on failures, not warnings; a baseline sees a warning as passing."""
    stdin = lines(*[f"{servers.base}/status/429"] * 5, f"{servers.base}/ok")
    run = run_cli(
        "--retries", "0", "-c", "1", "--max-failures", "1", "--warn-on", "4xx", stdin=stdin
    )  # fmt: skip
    assert len(run.records) == 6
    assert sum(record.get("warn", False) for record in run.records) == 5
    records = tmp_path / "old.jsonl"
    records.write_bytes(run.stdout)
    again = run_cli("--retries", "0", "--baseline", str(records), stdin=stdin, status=1)
    assert "1 new failure against the baseline" in again.stderr  # one check, five times


@transport_free
def test_warn_on_words() -> None:
    """Kinds, statuses, classes, ranges and slow; anything else is a usage error."""
    warn = parse_warn_on("Timeout,blocked,429,5xx,slow")
    assert warn.covers(ErrorKind.TIMEOUT, None)
    assert warn.covers(ErrorKind.HTTP, 503, status_missed=True)
    assert warn.covers(ErrorKind.HTTP, 200, slow=True)
    assert not warn.covers(ErrorKind.HTTP, 404, status_missed=True)
    assert not warn.covers(ErrorKind.HTTP, 503, status_missed=True, other_missed=True)
    assert warn.covers(ErrorKind.BLOCKED, 403)  # listed as a kind
    assert parse_warn_on("429").covers(ErrorKind.BLOCKED, 429)  # a 429 challenge is a 429
    assert not parse_warn_on("429").covers(ErrorKind.BLOCKED, 403)
    assert not warn.covers(ErrorKind.DNS, None)
    assert parse_warn_on("http").covers(ErrorKind.HTTP, 200, slow=True, other_missed=True)
    for word in ("cancelled", "skipped", "internal", "invalid_input", "nope", ""):
        with pytest.raises(ValueError, match=r"warn-on|is not an error kind"):
            parse_warn_on(word)
    usage = run_cli("--warn-on", "cancelled", "http://127.0.0.1:1/", status=2)
    assert "--warn-on" in usage.stderr
