"""Expectations: status lists, body regex, latency, headers; per-line overrides; failed."""

from __future__ import annotations

import json

import pytest

from afetch.expect import DEFAULT_EXPECTATION, check, parse_statuses
from tests.conftest import lines, run_cli
from tests.server import ServerThread


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("200", [200], [201, 404]),
        ("200,204,3xx", [200, 204, 301, 399], [201, 404]),
        ("200-299", [200, 250, 299], [199, 300]),
        ("4XX", [404], [500]),
    ],
)
def test_status_lists_take_codes_classes_and_ranges(
    text: str, inside: list[int], outside: list[int]
) -> None:
    """--expect-status accepts what curl users write."""
    statuses = parse_statuses(text)
    assert all(code in statuses for code in inside)
    assert not any(code in statuses for code in outside)


@pytest.mark.parametrize("text", ["", "abc", "2xxx", "299-200", "6xx"])
def test_bad_status_lists_are_refused(text: str) -> None:
    """Nonsense is a ValueError (a usage error on the command line)."""
    with pytest.raises(ValueError, match=r"."):
        parse_statuses(text)


@pytest.mark.parametrize(
    ("days_left", "failed"),
    [
        (12, ["certificate expires in 12 days (< 30)"]),
        (0, ["certificate expires in 0 days (< 30)"]),
        (-2166, ["certificate expired 2166 days ago"]),
        (30, []),
    ],
)
def test_cert_days_say_how_far_from_expiry(days_left: int, failed: list[str]) -> None:
    """A certificate already expired (seen with -k) says so, not 'expires in -N days'."""
    expectation = DEFAULT_EXPECTATION.override({"cert_days": 30})
    tls = {"days_left": days_left}
    assert check(expectation, status=200, body="", elapsed_ms=1, headers={}, tls=tls) == failed


def test_check_reports_every_failed_expectation_readably() -> None:
    """Each failed expectation is one readable line, as in the issue's examples."""
    expectation = DEFAULT_EXPECTATION.override(
        {
            "status": [200],
            "body": "healthy",
            "max_latency_ms": 200,
            "headers": {"content-type": "json"},
        }
    )
    failed = check(
        expectation,
        status=404,
        body="sick",
        elapsed_ms=812,
        headers={"content-type": "text/html"},
    )
    assert failed == [
        "status 404 not in [200]",
        "body did not match 'healthy'",
        "latency 812 ms > 200 ms",
        "header content-type: 'text/html' did not match 'json'",
    ]


def test_cli_expectations_make_records_not_ok_with_failed(servers: ServerThread) -> None:
    """--expect-status/--expect-body/--max-latency: ok false, error http, failed reasons."""
    run = run_cli(
        f"{servers.base}/ok",
        f"{servers.base}/status/204",
        f"{servers.base}/slow?s=0.3",
        "--expect-status", "200",
        "--expect-body", "^ok$",
        "--max-latency", "200ms",
        "--retries", "0",
        status=1,
    )  # fmt: skip
    by_index = run.by_index()
    assert run.returncode == 1
    assert by_index[0]["ok"] is True
    assert "failed" not in by_index[0]
    assert by_index[1]["failed"] == ["status 204 not in [200]", "body did not match '^ok$'"]
    assert by_index[1]["error"]["type"] == "http"
    assert by_index[2]["failed"] == [
        "body did not match '^ok$'",
        f"latency {by_index[2]['elapsed_ms']:.0f} ms > 200 ms",
    ]


def test_a_line_expect_replaces_the_command_line_kind_by_kind(servers: ServerThread) -> None:
    """A line's expect.status replaces --expect-status; --expect-body still applies."""
    line = json.dumps({"url": f"{servers.base}/status/404", "expect": {"status": ["4xx"]}})
    other = json.dumps({"url": f"{servers.base}/status/404"})
    run = run_cli(
        "--expect-status", "200", "--expect-body", "404", stdin=lines(line, other), status=1
    )
    by_index = run.by_index()
    assert by_index[0]["ok"] is True
    assert by_index[1]["failed"] == ["status 404 not in [200]"]


def test_default_expectation_is_status_200_to_399(servers: ServerThread) -> None:
    """Without options a 404 fails the default status expectation."""
    (record,) = run_cli(f"{servers.base}/status/404", status=1).records
    assert record["failed"] == ["status 404 not in [200-399]"]


@pytest.mark.parametrize(
    "expect",
    [
        {"status": "abc"},
        {"body": "("},
        {"max_latency_ms": -1},
        {"headers": {"x": 1}},
        {"bogus": 1},
        [],
    ],
)
def test_bad_expect_objects_are_invalid_input(servers: ServerThread, expect: object) -> None:
    """A malformed expect makes that line invalid_input; the run goes on."""
    line = json.dumps({"url": f"{servers.base}/ok", "expect": expect})
    (record,) = run_cli(stdin=lines(line), status=1).records
    assert record["error"]["type"] == "invalid_input"
