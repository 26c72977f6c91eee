"""Results → a tally (counts, latency percentiles, throughput) and the exit status.

Latencies go into a log-scale histogram (1 % wide buckets), so a run of ten
million requests keeps a few hundred counters, not ten million floats.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from afetch.config import Thresholds

if TYPE_CHECKING:
    from afetch.sinks.markdown import BaselineDiff
from afetch.errors import ErrorKind
from afetch.models import FetchResult, check_name

_BUCKETS_PER_E = 100  # bucket width: a factor of e**(1/100), about 1 %
#: Failure lines in the summary (one per kind and reason); the rest are counted.
_FAILED_SHOWN = 10
#: Distinct (kind, reason) pairs remembered; more are only counted.
_FAILED_KEPT = 200
#: Names listed per folded failure line.
_NAMES_SHOWN = 3


class ExitStatus(IntEnum):
    """The process exit codes of SPEC §3."""

    OK = 0
    FAILURES = 1
    USAGE = 2
    SIGPIPE = 141
    SIGINT = 130
    SIGTERM = 143


class LatencyHistogram:
    """Approximate percentiles (±1 %) in constant memory."""

    def __init__(self) -> None:
        self._counts: Counter[int] = Counter()
        self.count = 0

    def add(self, ms: float) -> None:
        self._counts[int(math.log1p(max(ms, 0.0)) * _BUCKETS_PER_E)] += 1
        self.count += 1

    def percentile(self, fraction: float) -> float | None:
        if not self.count:
            return None
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        for bucket in sorted(self._counts):
            seen += self._counts[bucket]
            if seen >= rank:
                return math.expm1((bucket + 0.5) / _BUCKETS_PER_E)
        raise AssertionError("rank beyond count")  # pragma: no cover


class Tally:
    """Running counts of a run's records."""

    def __init__(self, clock: float | None = None) -> None:
        self.started = time.perf_counter() if clock is None else clock
        self.total = 0
        self.ok = 0
        self.by_status: Counter[str] = Counter()
        self.by_error: Counter[str] = Counter()
        #: (kind, reason) → [count, the first names]: identical failures fold into one line.
        self.failed: dict[tuple[str, str], list[Any]] = {}
        self.colour = False  # ANSI colours in render (--color)
        self.latency = LatencyHistogram()
        self.ok_latency = LatencyHistogram()  # what --max-p95 judges
        self.judges_latency = False  # set when --max-p95 is given: one histogram less
        self.input_errors = 0
        self.duplicates = 0
        self.flaky = 0
        self.timed = True  # False for reports rebuilt from records: no run to time

    @property
    def not_ok(self) -> int:
        return self.total - self.ok

    def add(self, result: FetchResult) -> None:
        self.total += 1
        if result.ok:
            self.ok += 1
            if self.judges_latency:
                self.ok_latency.add(result.elapsed_ms)
            if result.flaky:
                self.flaky += 1
        else:
            self._fold(result)
        if result.status is not None:
            self.by_status[f"{result.status // 100}xx"] += 1
        if result.error is not None:
            self.by_error[result.error.kind.value] += 1
        if result.error is None or result.error.kind not in _NO_LATENCY:
            self.latency.add(result.elapsed_ms)

    def _fold(self, result: FetchResult) -> None:
        kind = result.error.kind.value if result.error else "http"
        reason = "; ".join(result.failed) or (result.error.message if result.error else "")
        name = cut(check_name(result))
        if result.status is not None:
            name += f" ({result.status})"
        entry = self.failed.get((kind, reason))
        if entry is None:
            if len(self.failed) >= _FAILED_KEPT:
                entry = self.failed.setdefault(("other", "more kinds of failure"), [0, []])
            else:
                entry = self.failed[(kind, reason)] = [0, []]
        entry[0] += 1
        if len(entry[1]) < _NAMES_SHOWN:
            entry[1].append(name)

    def _failure_lines(self) -> list[str]:
        """One line per kind and reason, most frequent first: ``kind (N) reason: names``."""
        ordered = sorted(self.failed.items(), key=lambda item: (-item[1][0], item[0]))
        lines = []
        for (kind, reason), (count, names) in ordered[:_FAILED_SHOWN]:
            times = f" ({count})" if count > 1 else ""
            listed = ", ".join(names) + (
                f" and {count - len(names)} more" if count > len(names) else ""
            )
            lines.append(f"    {self._paint(kind, _YELLOW)}{times}  {reason}: {listed}")
        hidden = sum(count for _, (count, _) in ordered[_FAILED_SHOWN:])
        if hidden:
            lines.append(
                f"    ... and {hidden} more failures of {len(ordered) - _FAILED_SHOWN} other kinds"
            )
        return lines

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def render(self, now: float | None = None, verdicts: Sequence[Verdict] = ()) -> str:
        """The human summary printed on stderr."""
        seconds = max((time.perf_counter() if now is None else now) - self.started, 1e-9)
        timing = f" in {seconds:.2f}s ({self.total / seconds:.1f} req/s)" if self.timed else ""
        not_ok = self._paint(f"{self.not_ok} not ok", _RED if self.not_ok else _GREEN)
        lines = [f"afetch: {self.total} requests, {self.ok} ok, {not_ok}{timing}"]
        if self.by_status:
            lines.append("  status: " + _counts(self.by_status))
        if self.by_error:
            lines.append("  errors: " + _counts(self.by_error))
        if self.latency.count:
            parts = [
                f"p{int(p * 100)} {self.latency.percentile(p) or 0:.1f}ms"
                for p in (0.5, 0.95, 0.99)
            ]
            lines.append("  latency: " + "  ".join(parts))
        if self.failed:
            lines.append(self._paint(f"  failed ({self.not_ok}):", _RED))
            lines += self._failure_lines()
        if self.flaky:
            lines.append(f"  flaky: {self.flaky} (failed, then passed on --recheck)")
        if self.duplicates:
            lines.append(f"  duplicates skipped: {self.duplicates}")
        if self.input_errors:
            lines.append(f"  input errors: {self.input_errors} (see messages above)")
        for verdict in verdicts:
            held = self._paint("ok", _GREEN) if verdict.holds else self._paint("FAILED", _RED)
            lines.append(f"  threshold {held}: {verdict.text}")
        return "\n".join(lines)


_RED, _GREEN, _YELLOW = "31", "32", "33"
_NO_LATENCY = frozenset({ErrorKind.INVALID_INPUT, ErrorKind.CANCELLED, ErrorKind.SKIPPED})


def _counts(counter: Counter[str]) -> str:
    return "  ".join(f"{key} {value}" for key, value in sorted(counter.items()))


@dataclass(frozen=True, slots=True)
class Verdict:
    """One whole-run threshold, judged: what the summary shows and the exit status uses."""

    holds: bool
    text: str  # "error rate 7.5% > 5% (by 2.5 pp)"


def judge(
    tally: Tally, thresholds: Thresholds, baseline: BaselineDiff | None = None
) -> list[Verdict]:
    """Every threshold given, judged; none when none was given (every record must be ok).

    Given any threshold, the error rate is judged too: against
    ``--max-error-rate``, or against 0 % (every record ok) without it —
    unless a baseline is given: then failures count only when they are new.
    """
    if not thresholds.any and baseline is None:
        return []
    verdicts = []
    if baseline is not None:
        new = len(baseline.new)
        verdicts.append(
            Verdict(
                new == 0,
                f"{new} new failures against the baseline"
                f" ({len(baseline.still)} still failing, {len(baseline.fixed)} fixed"
                + (f": {_some(baseline.fixed)})" if baseline.fixed else ")"),
            )
        )
        if thresholds.max_error_rate is None:
            return verdicts + _latency_and_count(tally, thresholds)
    limit = thresholds.max_error_rate or 0.0
    rate = tally.not_ok / tally.total if tally.total else 0.0
    over = rate > limit
    verdicts.append(
        Verdict(
            not over,
            f"error rate {_pct(rate)} {'>' if over else '<='} {_pct(limit)}"
            + (f" (by {_pct(rate - limit, unit=' pp')})" if over else "")
            + f" [{tally.not_ok} of {tally.total} not ok]",
        )
    )
    return verdicts + _latency_and_count(tally, thresholds)


def _latency_and_count(tally: Tally, thresholds: Thresholds) -> list[Verdict]:
    verdicts = []
    if thresholds.max_p95_ms is not None:
        p95 = tally.ok_latency.percentile(0.95)
        if p95 is None:
            verdicts.append(Verdict(True, "p95 latency: no ok records to judge"))
        else:
            slow = p95 > thresholds.max_p95_ms
            verdicts.append(
                Verdict(
                    not slow,
                    f"p95 latency {p95:.0f}ms {'>' if slow else '<='}"
                    f" {thresholds.max_p95_ms:.0f}ms"
                    + (f" (by {p95 - thresholds.max_p95_ms:.0f}ms)" if slow else ""),
                )
            )
    if thresholds.min_requests is not None:
        few = tally.total < thresholds.min_requests
        verdicts.append(
            Verdict(
                not few,
                f"{tally.total} requests {'<' if few else '>='} {thresholds.min_requests}"
                + (f" (by {thresholds.min_requests - tally.total})" if few else ""),
            )
        )
    return verdicts


def closing_lines(tally: Tally, verdicts: Sequence[Verdict], *, summary: bool) -> list[str]:
    """What stderr says at the end: each failed threshold, then the summary if asked for."""
    lines = [f"afetch: threshold failed: {v.text}" for v in verdicts if not v.holds]
    if summary:
        lines.append(tally.render(verdicts=verdicts))
    return lines


def n_requests(count: int, adjective: str = "") -> str:
    """``1 request``, ``2 requests``: counts people read."""
    return f"{count} {adjective}request{'' if count == 1 else 's'}"


def _some(names: Sequence[str], shown: int = 5) -> str:
    """A few names, each cut to a line's width, then how many more."""
    text = ", ".join(cut(name) for name in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def cut(text: str, width: int = 80) -> str:
    """A name shown to a person: at most ``width`` columns, an ellipsis where cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _pct(fraction: float, unit: str = "%") -> str:
    return f"{fraction * 100:.3g}{unit}"


def exit_status(
    tally: Tally,
    *,
    signal_status: ExitStatus | None = None,
    broken_pipe: bool = False,
    output_failed: bool = False,
    exit_zero: bool = False,
    deadline_hit: bool = False,
    unfinished: int = 0,
    verdicts: list[Verdict] | None = None,
) -> ExitStatus:
    """The one place the process exit code is decided.

    Cancelled records are not ok, and neither is a run cut short: a CI run
    that checked nothing never exits 0 by running out of time. With
    whole-run thresholds, their ``verdicts`` replace "every record ok".
    """
    if signal_status is not None:
        return signal_status
    if broken_pipe:
        return ExitStatus.SIGPIPE
    if output_failed:
        return ExitStatus.FAILURES
    if tally.input_errors and not tally.total:
        return ExitStatus.USAGE  # the input failed before anything was fetched
    passed = run_passed(tally, verdicts, unfinished=unfinished, deadline_hit=deadline_hit)
    if not passed and not exit_zero:
        return ExitStatus.FAILURES
    return ExitStatus.OK


def run_passed(
    tally: Tally,
    verdicts: list[Verdict] | None,
    *,
    unfinished: int = 0,
    deadline_hit: bool = False,
) -> bool:
    """The run's verdict, as reports state it: ``--exit-zero`` changes the status, never this."""
    judged = not all(v.holds for v in verdicts) if verdicts else tally.not_ok
    return not (judged or tally.input_errors or unfinished or deadline_hit)
