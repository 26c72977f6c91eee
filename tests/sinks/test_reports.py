"""--markdown, --github, --baseline and afetch --report: reports people read."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from junitparser import JUnitXml

from tests.conftest import lines, run_cli
from tests.server import ServerThread


def _checks(servers: ServerThread) -> bytes:
    return lines(
        *(f"{servers.base}/ok?i={i}" for i in range(6)),
        "http://127.0.0.1:1/dead",
        orjson.dumps(
            {"url": f"{servers.base}/status/404", "id": "api-health", "expect": {"status": [200]}}
        ).decode(),
        f"{servers.base}/slow?s=0.3",
    )


def test_markdown_and_github_reports(servers: ServerThread, tmp_path: Path) -> None:
    """--markdown and --github write the report and one ::error per failed check."""
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    report = tmp_path / "out" / "report.md"
    run = run_cli(
        "--retries", "0", "--markdown", str(report), "--github", "-i", "-",
        stdin=_checks(servers), env={"GITHUB_STEP_SUMMARY": str(summary)},
        status=1,
    )  # fmt: skip
    assert run.returncode == 1
    text = report.read_text()
    assert text.startswith("## afetch: 9 checks, 7 ok, 2 not ok — ❌ failed")
    assert "#### connect (1)" in text
    assert "| http://127.0.0.1:1/dead |  | 127.0.0.1:1: Connection refused |" in text
    assert "#### http (1)" in text
    assert "| api-health | 404 | status 404 not in [200] |" in text
    assert f"| {servers.base}/slow?s=0.3 | 200 |" in text.split("### Slowest")[1].splitlines()[4]
    assert summary.read_text() == "earlier step\n" + text  # appended, not replaced
    errors = [line for line in run.stderr.splitlines() if line.startswith("::error")]
    assert errors == [
        "::error title=afetch%3A http%3A//127.0.0.1%3A1/dead::"
        "http://127.0.0.1:1/dead: 127.0.0.1:1: Connection refused",
        "::error title=afetch%3A api-health::api-health (404): status 404 not in [200]",
    ]


def test_github_without_a_step_summary_says_so(servers: ServerThread) -> None:
    """--github without GITHUB_STEP_SUMMARY says so and goes on."""
    run = run_cli(f"{servers.base}/ok", "--github", env={"GITHUB_STEP_SUMMARY": ""})
    assert run.returncode == 0
    assert "GITHUB_STEP_SUMMARY is not set" in run.stderr


def test_report_from_two_shards_equals_the_unsharded_run(
    servers: ServerThread, tmp_path: Path
) -> None:
    """One run writes records and reports; its records split in two shard files (in
    another order) rebuild the same Markdown and the same JUnit test cases."""
    records = tmp_path / "all.jsonl"
    run = run_cli(
        "--retries", "0", "-o", str(records), "--markdown", str(tmp_path / "run.md"),
        "--junit", str(tmp_path / "run.xml"), "--max-error-rate", "10%", "-i", "-",
        stdin=_checks(servers),
        status=1,
    )  # fmt: skip
    assert run.returncode == 1  # 2 of 9 not ok > 10 %
    shard_lines = records.read_bytes().splitlines(keepends=True)
    (tmp_path / "a.jsonl").write_bytes(b"".join(shard_lines[1::2]))
    (tmp_path / "b.jsonl").write_bytes(b"".join(shard_lines[0::2]))
    rebuilt = run_cli(
        "--report", str(tmp_path / "b.jsonl"), str(tmp_path / "a.jsonl"),
        "--markdown", str(tmp_path / "shards.md"), "--junit", str(tmp_path / "shards.xml"),
        "--max-error-rate", "10%", "--summary",
        status=1,
    )  # fmt: skip
    assert rebuilt.returncode == 1
    assert rebuilt.records == []  # records are not written again
    assert (tmp_path / "shards.md").read_text() == (tmp_path / "run.md").read_text()
    assert "threshold failed: error rate 22.2% > 10%" in rebuilt.stderr

    def cases(path: Path) -> list[tuple[str, str]]:
        (suite,) = list(JUnitXml.fromfile(str(path)))
        return [(case.name, repr([type(r).__name__ for r in case.result])) for case in suite]

    assert cases(tmp_path / "shards.xml") == cases(tmp_path / "run.xml")


def test_exit_zero_changes_the_status_never_the_verdict(
    servers: ServerThread, tmp_path: Path
) -> None:
    """A failing run with --exit-zero exits 0, and its report still says failed, like a rebuild."""
    records = tmp_path / "r.jsonl"
    run = run_cli(
        "--retries", "0", "--exit-zero", "-o", str(records), "--markdown", str(tmp_path / "run.md"),
        f"{servers.base}/ok", f"{servers.base}/status/500",
    )  # fmt: skip
    assert run.returncode == 0
    text = (tmp_path / "run.md").read_text()
    assert "❌ failed" in text.splitlines()[0]
    rebuilt = run_cli("--report", str(records), "--markdown", str(tmp_path / "again.md"), status=1)
    assert rebuilt.returncode == 1
    assert (tmp_path / "again.md").read_text() == text


def test_report_keeps_the_last_record_of_each_check_and_the_records_times(
    servers: ServerThread, tmp_path: Path
) -> None:
    """Two runs of one list are one set of checks (the later wins, said on stderr); the
    JUnit time is the records' own, not how long the rebuild took."""
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    run_cli(
        "--retries",
        "0",
        "-o",
        str(first),
        f"{servers.base}/status/500",
        f"{servers.base}/ok",
        status=1,
    )
    run_cli("--retries", "0", "-o", str(second), f"{servers.base}/ok", f"{servers.base}/ok")
    rebuilt = run_cli(
        "--report",
        str(first),
        str(second),
        "--junit",
        str(tmp_path / "j.xml"),
        "--summary",
        status=1,
    )
    assert "1 earlier record of the same checks replaced" in rebuilt.stderr
    (suite,) = list(JUnitXml.fromfile(str(tmp_path / "j.xml")))
    assert suite.tests == 3  # index 0 was /status/500 then /ok: two checks; index 1 one
    assert suite.failures + suite.errors == 1
    elapsed = [orjson.loads(line)["elapsed_ms"] for line in first.read_bytes().splitlines()]
    elapsed += [orjson.loads(line)["elapsed_ms"] for line in second.read_bytes().splitlines()]
    kept = elapsed[0] + elapsed[2] + elapsed[3]  # (1, /ok) of the first run was replaced
    assert suite.time == pytest.approx(kept / 1000, abs=0.002)


def test_report_of_a_file_that_is_not_records(tmp_path: Path) -> None:
    """--report of a file that is not records, or missing, is exit 2."""
    bad = tmp_path / "urls.txt"
    bad.write_text("http://a.test/\n")
    run = run_cli("--report", str(bad), status=2)
    assert run.returncode == 2
    assert f"afetch: error: {bad}:1: not an afetch record" in run.stderr
    missing = run_cli("--report", str(tmp_path / "missing.jsonl"), status=2)
    assert missing.returncode == 2
    assert "No such file" in missing.stderr


def _ided(servers: ServerThread, **paths: str) -> bytes:
    """JSON lines whose id names the check, so a check keeps its name when its URL changes."""
    return lines(
        *(orjson.dumps({"id": k, "url": f"{servers.base}{v}"}).decode() for k, v in paths.items())
    )


def test_baseline_fails_only_on_new_failures(servers: ServerThread, tmp_path: Path) -> None:
    """--baseline fails only on new failures and names still and fixed ones."""
    baseline = tmp_path / "baseline.jsonl"
    first = _ided(servers, a="/status/500", b="/status/500", c="/ok")
    assert run_cli("--retries", "0", "-o", str(baseline), stdin=first, status=1).returncode == 1
    same = run_cli(
        "--retries", "0", "--baseline", str(baseline), "--summary",
        "--markdown", str(tmp_path / "r.md"),
        stdin=_ided(servers, a="/status/500", b="/ok", c="/ok"),
    )  # fmt: skip
    assert same.returncode == 0, same.stderr  # a still fails, b is fixed: nothing new
    assert "0 new failures against the baseline (1 still failing, 1 fixed: b)" in same.stderr
    text = (tmp_path / "r.md").read_text()
    assert (
        "- **New failures** (0)\n- **Still failing** (1):\n  - a\n- **Fixed** (1):\n  - b" in text
    )
    worse = run_cli(
        "--retries", "0", "--baseline", str(baseline),
        stdin=_ided(servers, a="/status/500", b="/ok", c="/status/503"),
        status=1,
    )  # fmt: skip
    assert worse.returncode == 1
    assert "threshold failed: 1 new failure against the baseline" in worse.stderr


@pytest.mark.parametrize("content", [b"not json\n", b'{"index": 0}\n'])
def test_a_bad_baseline_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    """A --baseline file that is not records is a usage error."""
    baseline = tmp_path / "baseline.jsonl"
    baseline.write_bytes(content)
    run = run_cli("http://127.0.0.1:1/", "--baseline", str(baseline), status=2)
    assert run.returncode == 2
    assert "--baseline" in run.stderr
    assert run.records == []


def test_a_report_goes_to_stdout_when_records_do_not(servers: ServerThread, tmp_path: Path) -> None:
    """--junit - / --markdown - print the report on stdout with -o FILE or --report; where
    records would share stdout, or both ask for it, it is a usage error."""
    records = tmp_path / "r.jsonl"
    run = run_cli("-o", str(records), "--markdown", "-", f"{servers.base}/ok")
    assert run.stdout.decode().startswith("## afetch: 1 check, 1 ok")
    rebuilt = run_cli("--report", str(records), "--junit", "-")
    suite = JUnitXml.fromstring(rebuilt.stdout.decode())
    assert suite.tests == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl", "r.jsonl.resume.json"]
    mixed = run_cli("--markdown", "-", f"{servers.base}/ok", status=2)
    assert "standard output carries the records" in mixed.stderr
    both = run_cli("--report", str(records), "--junit", "-", "--markdown", "-", status=2)
    assert "only one report can go to stdout" in both.stderr
