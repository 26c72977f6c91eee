"""--expect-jq: jq expressions (libjq) over the body as JSON."""

from __future__ import annotations

import orjson
import pytest

from afetch.expect import Expectation, check
from tests.conftest import lines, run_cli
from tests.server import ServerThread


@pytest.mark.parametrize(
    ("expression", "body", "reason"),
    [
        ('.status == "up"', '{"status": "up"}', None),
        ('.status == "up"', '{"status": "down"}', """jq '.status == "up"' gave false"""),
        (".checks.db", '{"checks": {}}', "jq '.checks.db' gave null"),
        (".items | length > 0", '{"items": [1]}', None),
        ("empty", "{}", "jq 'empty' gave no output"),
        (".a.b", '"text"', "jq '.a.b': Cannot index string with string (\"a\")"),
        (".status", "<html>down</html>", "jq '.status': body is not JSON"),
        (".status", "", "jq '.status': body is not JSON"),
        (".[0]", "[0]", None),  # 0 is truthy in jq
    ],
)
def test_jq_truthiness_errors_and_non_json(expression: str, body: str, reason: str | None) -> None:
    """jq holds on a truthy first output; each other outcome has its reason."""
    failed = check(Expectation(jq=(expression,)), status=200, body=body, elapsed_ms=1.0, headers={})
    assert failed == ([] if reason is None else [reason])


def test_expect_jq_on_the_command_line(servers: ServerThread) -> None:
    """--expect-jq (repeatable) judges each JSON body."""
    run = run_cli(
        f"{servers.base}/health?status=up", f"{servers.base}/health?status=down",
        f"{servers.base}/ok", "--expect-jq", '.status == "up"', "--expect-jq", ".checks.db",
        status=1,
    )  # fmt: skip
    by_index = {r["index"]: r for r in run.records}
    assert by_index[0]["ok"] is True
    assert by_index[1]["failed"] == ["""jq '.status == "up"' gave false"""]
    assert by_index[2]["failed"] == [
        """jq '.status == "up"': body is not JSON""",
        "jq '.checks.db': body is not JSON",
    ]
    assert "body" not in by_index[0]  # checked, not captured
    assert run.returncode == 1


def test_a_bad_expression_is_a_usage_error_before_fetching(servers: ServerThread) -> None:
    """A jq expression that does not compile is exit 2 before fetching."""
    run = run_cli(f"{servers.base}/count/jq-usage", "--expect-jq", ".[", status=2)
    assert run.returncode == 2
    assert "--expect-jq" in run.stderr
    assert "bad jq expression '.['" in run.stderr
    assert servers.state.hits["jq-usage"] == 0


def test_per_line_jq_and_its_bad_expression(servers: ServerThread) -> None:
    """A line's expect.jq replaces --expect-jq; a bad one is that line's invalid_input."""
    good = {"url": f"{servers.base}/health?status=down", "expect": {"jq": '.status == "down"'}}
    listed = {"url": f"{servers.base}/health", "expect": {"jq": [".checks.db", ".status"]}}
    bad = {"url": f"{servers.base}/health", "expect": {"jq": ".["}}
    run = run_cli(
        "-i", "-", stdin=lines(*(orjson.dumps(x).decode() for x in (good, listed, bad))), status=1
    )
    by_index = {r["index"]: r for r in run.records}
    assert by_index[0]["ok"] is True
    assert by_index[1]["ok"] is True
    assert by_index[2]["error"]["type"] == "invalid_input"
    assert "expect.jq: bad jq expression" in by_index[2]["error"]["message"]


def test_jq_is_bounded_by_max_body(servers: ServerThread) -> None:
    """A body cut by --max-body is not JSON to jq."""
    run = run_cli(f"{servers.base}/health", "--expect-jq", ".status", "--max-body", "10", status=1)
    (record,) = run.records
    assert record["failed"] == ["jq '.status': body is not JSON"]
    assert record["truncated"] is True


def test_an_expression_that_is_not_a_test_is_warned_about_once(servers: ServerThread) -> None:
    """'.status = "up"' (a typo for ==) holds on every JSON body, as in jq; it is said once."""
    urls = [f"{servers.base}/health?status=down&i={i}" for i in range(3)]
    typo = run_cli(*urls, "--expect-jq", '.status = "up"')
    assert typo.returncode == 0  # jq's meaning is kept
    warnings = [line for line in typo.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, typo.stderr
    assert "'.status = \"up\"' gave" in warnings[0]
    assert "compare with ==" in warnings[0]
    meant = run_cli(
        *urls, "--expect-jq", '.status == "up"', "--expect-jq", ".checks | not", status=1
    )
    assert "warning" not in meant.stderr
