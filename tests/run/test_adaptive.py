"""Per-host pacing that listens to the server: AIMD on 429/503, rate-limit headers."""

from __future__ import annotations

import time

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from afetch.models import FetchSpec
from afetch.pacing import HostBudgets, HostSlots, HostThrottle, PacingNotes
from afetch.ratelimit import Budget, read_budget
from tests.conftest import Transport, lines, run_cli
from tests.run.test_pacing import FakeClock
from tests.server import ServerThread

HOST = ("api.test", 443)


def test_a_throttled_host_halves_then_spaces_then_recovers() -> None:
    """429 with 8 in flight: 4 at a time; answers to attempts sent before that step do not
    halve again; at 1 the gap doubles from 0.1 s to at most 1 s; runs of successes take
    it back step by step (gap first, then slots) until the host is forgotten."""
    clock = FakeClock()
    throttle = HostThrottle(clock)
    first = throttle.throttled(HOST, busy=8, started=clock.now - 1)
    assert first is not None
    assert (first.cap, first.interval) == (4, 0.0)
    assert throttle.throttled(HOST, busy=8, started=clock.now - 0.5) is None  # same round
    caps = []
    for _ in range(3):
        clock.now += 1
        pace = throttle.throttled(HOST, busy=4, started=clock.now)
        assert pace is not None
        caps.append((pace.cap, pace.interval))
    assert caps == [(2, 0.0), (1, 0.0), (1, 0.1)]
    for _ in range(6):
        clock.now += 1
        throttle.throttled(HOST, busy=1, started=clock.now)
    assert throttle.interval(HOST) == 1.0  # LONGEST_GAP
    steps = []
    for _ in range(200):
        if (pace := throttle.succeeded(HOST)) is not None:
            steps.append((pace.cap, pace.interval))
    assert steps[:3] == [(1, 0.5), (1, 0.25), (1, 0.125)]
    assert (2, 0.0) in steps
    assert steps[-1] == (0, 0.0)  # back to full speed
    assert throttle.hosts == {}


def test_host_slots_follow_a_lowered_and_a_raised_cap() -> None:
    """Without --per-host nothing is counted until a host is slowed; then its running
    requests are, its cap parks what is over it, and lifting it admits several at once."""
    slots = HostSlots(0)
    specs = [FetchSpec(i, f"https://api.test/{i}", URL(f"https://api.test/{i}")) for i in range(6)]
    other = FetchSpec(9, "https://b.test/", URL("https://b.test/"))
    assert all(slots.admit(spec) for spec in specs[:4])
    assert slots.busy(HOST) == 0
    slots.track(HOST, specs[:4])
    slots.caps[HOST] = 1
    assert slots.admit(other)  # another host: not counted
    assert slots.release(other) == []
    assert not slots.admit(specs[4])
    assert not slots.admit(specs[5])
    assert slots.release(specs[0]) == []  # 3 still in flight: over the cap
    assert slots.release(specs[1]) == []
    assert slots.release(specs[2]) == []
    del slots.caps[HOST]  # recovered: both parked ones start
    assert slots.release(specs[3]) == [specs[4], specs[5]]
    assert slots.busy(HOST) == 2


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"RateLimit": '"default";r=5;t=30', "RateLimit-Policy": '"default";q=100;w=60'},
         Budget(5, 30.0, 100)),
        ({"RateLimit": '"burst";r=50;t=1, "day";r=2;t=600'}, Budget(2, 600.0, None)),
        ({"RateLimit": "limit=10, remaining=3, reset=7"}, Budget(3, 7.0, 10)),
        ({"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "4"},
         Budget(0, 4.0, 10)),
        ({"X-RateLimit-Remaining": "9", "X-RateLimit-Reset-After": "2.5"}, Budget(9, 2.5, None)),
        ({"RateLimit": "nonsense;;;", "X-RateLimit-Remaining": "-1"}, None),
        ({"RateLimit": '"d";r=abc;t=1', "X-RateLimit-Remaining": "4",
          "X-RateLimit-Reset": "soon"}, None),
        ({"RateLimit": '"d";r=1;t=999999999'}, None),  # a window beyond a day: not a hint
        ({}, None),
    ],
)  # fmt: skip
def test_budgets_from_every_spelling(headers: dict[str, str], expected: Budget | None) -> None:
    """IETF structured fields (the tightest policy wins), the draft's older forms and
    X-RateLimit-*; anything malformed is ignored, never an error."""
    assert read_budget(CIMultiDictProxy(CIMultiDict(headers))) == expected


def test_a_unix_time_reset_is_seconds_from_now() -> None:
    """GitHub's X-RateLimit-Reset is a Unix time."""
    headers = {"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": str(int(time.time()) + 60)}
    budget = read_budget(CIMultiDictProxy(CIMultiDict(headers)))
    assert budget is not None
    assert 58 <= budget.reset <= 60


def test_a_low_budget_spreads_what_is_left_over_the_window() -> None:
    """A quarter of the quota left or less: starts t/(r+1) apart; plenty left: no gap."""
    budgets = HostBudgets(longest=30.0)
    assert budgets.observe(HOST, Budget(80, 60.0, 100)) is None  # not low: nothing changes
    assert budgets.observe(HOST, Budget(2, 6.0, 10)) == 2.0
    assert budgets.gaps == {HOST: 2.0}
    assert budgets.observe(HOST, Budget(2, 6.1, 10)) is None  # within 10 %: unchanged
    assert budgets.observe(HOST, Budget(9, 1.0, 10)) == 0.0  # a new window
    assert budgets.gaps == {}
    assert budgets.observe(HOST, Budget(0, 3600.0, None)) == 30.0  # at most --retry-max-wait


def test_pacing_notes_merge_and_read_well() -> None:
    """Pacing notes from several processes merge, and read as one line per host."""
    notes = PacingNotes()
    notes.note(HOST, status=429)
    notes.note(HOST, cap=2, gap=0.0)
    other = PacingNotes()
    other.note(HOST, status=429)
    other.note(("b.test", 8080), budget_gap=1.5)
    notes.absorb(other.hosts)
    assert notes.lines() == [
        "api.test: 429 x2, slowed to 2 at a time",
        "b.test:8080: paced 1.5 s apart by its rate-limit headers",
    ]


@pytest.mark.usefixtures("each_transport")
def test_a_host_that_answers_503_under_load_is_slowed_down(
    servers: ServerThread, each_transport: Transport
) -> None:
    """-c 12 at a server that takes 2 at a time and refuses the rest with 503: afetch
    halves its concurrency to that host and says so (--verbose, the summary); the server
    refuses far fewer requests than with --no-adaptive."""
    refused = {}
    for mode in ("--adaptive", "--no-adaptive"):
        key = f"busy-{each_transport}{mode}"
        stdin = lines(*[f"{servers.base}/busy/{key}?max=2&s=0.05&i={i}" for i in range(24)])
        run = run_cli(
            "-c", "12", "--retries", "3", "--summary", "--verbose", mode, stdin=stdin,
            status=None,
        )  # fmt: skip
        refused[mode] = servers.state.refused[key]
        assert len(run.records) == 24
        if mode == "--adaptive":
            assert "afetch: pacing 127.0.0.1:" in run.stderr
            assert "503, slowed to" in run.stderr
            assert "pacing (429/503 and rate-limit headers):" in run.stderr
            assert "slowed to" in run.stderr.split("pacing (429/503")[1]
        else:
            assert "slowed to" not in run.stderr
    assert refused["--adaptive"] < refused["--no-adaptive"], refused


@pytest.mark.usefixtures("each_transport")
@pytest.mark.parametrize("style", ["ietf", "x"])
def test_rate_limit_headers_that_run_down_pace_the_host_before_a_429(
    servers: ServerThread, each_transport: Transport, style: str
) -> None:
    """4 requests per 1 s window, told in RateLimit/RateLimit-Policy or X-RateLimit-*:
    afetch spends what is left evenly and waits for the next window, so the server never
    has to say 429; with --no-adaptive it does."""
    key = f"budget-{each_transport}-{style}"
    stdin = lines(*[f"{servers.base}/budget/{key}?limit=4&window=1&style={style}"] * 6)
    run = run_cli("-c", "1", "--summary", stdin=stdin)
    assert all(record["status"] == 200 for record in run.records)
    assert servers.state.refused[key] == 0
    assert "paced" in run.stderr
    if each_transport == "lean" and style == "ietf":
        key += "-blind"
        stdin = lines(*[f"{servers.base}/budget/{key}?limit=4&window=1&style={style}"] * 6)
        run_cli("-c", "1", "--no-adaptive", stdin=stdin)
        assert servers.state.refused[key] >= 1


def test_worker_processes_report_their_pacing(servers: ServerThread) -> None:
    """--workers: each process paces the hosts it fetches; the summary has all of it."""
    stdin = lines(*[f"{servers.base}/status/429?i={i}" for i in range(4)])
    run = run_cli("--workers", "2", "--retries", "0", "--summary", stdin=stdin, status=1)
    pacing = run.stderr.split("pacing (429/503 and rate-limit headers):\n")[1]
    assert pacing.startswith("    127.0.0.1:"), run.stderr
    assert "429 x4" in pacing.splitlines()[0]


def test_slowed_hosts_stay_bounded_over_many_hosts() -> None:
    """A 429 from each of many distinct hosts: the tables keep at most KEPT of them."""
    from afetch.config import Config
    from afetch.pacing import Pacer

    pacer = Pacer(Config(), FakeClock())
    for n in range(HostThrottle.KEPT + 50):
        pacer.after_attempt(URL(f"https://h{n}.test/"), 429, None, None, 0.0)
    assert len(pacer._throttle.hosts) == HostThrottle.KEPT
    assert len(pacer._slots.caps) == HostThrottle.KEPT
    assert len(pacer.notes.hosts) == PacingNotes.KEPT
    assert pacer.notes.lines()[-1] == (
        f"and {PacingNotes.KEPT - 5} more hosts,"
        f" {HostThrottle.KEPT + 50 - PacingNotes.KEPT} 429/503 answers from hosts not listed"
    )
