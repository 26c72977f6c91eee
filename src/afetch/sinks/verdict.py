"""A run's tally → verdicts (whole-run thresholds, the baseline) and the exit status.

The one place that decides whether a run passed (``run_passed``: what the
reports say) and what the process exits with (``exit_status``: the same,
with ``--exit-zero``, signals and broken pipes on top).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from afetch.config import Thresholds
from afetch.sinks.tally import Tally, cut, n_requests


class ExitStatus(IntEnum):
    """The process exit codes of SPEC §3."""

    OK = 0
    FAILURES = 1
    USAGE = 2
    SIGPIPE = 141
    SIGHUP = 129
    SIGINT = 130
    SIGTERM = 143


@dataclass
class BaselineDiff:
    """``--baseline``: failures against an earlier run's records."""

    new: list[str] = field(default_factory=list)
    still: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)


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
                f"{new} new failure{'' if new == 1 else 's'} against the baseline"
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
                f"{n_requests(tally.total)} {'<' if few else '>='} {thresholds.min_requests}"
                + (f" (by {thresholds.min_requests - tally.total})" if few else ""),
            )
        )
    return verdicts


def _some(names: Sequence[str], shown: int = 5) -> str:
    """A few names, each cut to a line's width, then how many more."""
    text = ", ".join(cut(name) for name in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


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
