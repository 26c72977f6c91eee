"""A run's tally → the lines people read on stderr (colour with ``--color``)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from afetch.sinks.tally import FAILED_SHOWN, Tally, n_requests
from afetch.sinks.verdict import Verdict

_RED, _GREEN, _YELLOW = "31", "32", "33"


def render(
    tally: Tally,
    now: float | None = None,
    verdicts: Sequence[Verdict] = (),
    *,
    colour: bool = False,
) -> str:
    """The human summary printed on stderr."""
    paint = _painter(colour)
    seconds = max((time.perf_counter() if now is None else now) - tally.started, 1e-9)
    timing = f" in {seconds:.2f}s ({tally.total / seconds:.1f} req/s)" if tally.timed else ""
    not_ok = paint(f"{tally.not_ok} not ok", _RED if tally.not_ok else _GREEN)
    if tally.warned:
        not_ok += ", " + paint(f"{tally.warned} warned", _YELLOW)
    lines = [f"afetch: {n_requests(tally.total)}, {tally.ok} ok, {not_ok}{timing}"]
    if tally.by_status:
        lines.append("  status: " + _counts(tally.by_status))
    if tally.by_error:
        lines.append("  errors: " + _counts(tally.by_error))
    if tally.latency.count:
        parts = [
            f"p{int(p * 100)} {tally.latency.percentile(p) or 0:.1f}ms" for p in (0.5, 0.95, 0.99)
        ]
        lines.append("  latency: " + "  ".join(parts))
    if tally.failed:
        lines.append(paint(f"  failed ({tally.not_ok}):", _RED))
        lines += _failure_lines(tally.failed, paint)
    if tally.warnings:
        lines.append(paint(f"  warned ({tally.warned}, --warn-on):", _YELLOW))
        lines += _failure_lines(tally.warnings, paint)
    if tally.pacing:
        lines.append("  pacing (429/503 and rate-limit headers):")
        lines += [f"    {line}" for line in tally.pacing]
    if tally.flaky:
        lines.append(f"  flaky: {tally.flaky} (failed, then passed on --recheck)")
    if tally.duplicates:
        lines.append(f"  duplicates skipped: {tally.duplicates}")
    if tally.input_errors:
        lines.append(f"  input errors: {tally.input_errors} (see messages above)")
    for verdict in verdicts:
        held = paint("ok", _GREEN) if verdict.holds else paint("FAILED", _RED)
        lines.append(f"  threshold {held}: {verdict.text}")
    return "\n".join(lines)


def _failure_lines(
    folds: dict[tuple[str, str], list[Any]], paint: Callable[[str, str], str]
) -> list[str]:
    """One line per kind and reason, most frequent first: ``kind (N) reason: names``."""
    ordered = sorted(folds.items(), key=lambda item: (-item[1][0], item[0]))
    lines = []
    for (kind, reason), (count, names) in ordered[:FAILED_SHOWN]:
        times = f" ({count})" if count > 1 else ""
        listed = ", ".join(names) + (
            f" and {count - len(names)} more" if count > len(names) else ""
        )
        lines.append(f"    {paint(kind, _YELLOW)}{times}  {reason}: {listed}")
    hidden = sum(count for _, (count, _) in ordered[FAILED_SHOWN:])
    if hidden:
        lines.append(
            f"    ... and {hidden} more failures of {len(ordered) - FAILED_SHOWN} other kinds"
        )
    return lines


def _painter(colour: bool) -> Callable[[str, str], str]:
    if not colour:
        return lambda text, code: text
    return lambda text, code: f"\x1b[{code}m{text}\x1b[0m"


def closing_lines(
    tally: Tally, verdicts: Sequence[Verdict], *, summary: bool, colour: bool = False
) -> list[str]:
    """What stderr says at the end: each failed threshold, then the summary if asked for."""
    lines = [f"afetch: threshold failed: {v.text}" for v in verdicts if not v.holds]
    if summary:
        lines.append(render(tally, verdicts=verdicts, colour=colour))
    return lines


def _counts(counter: Counter[str]) -> str:
    return "  ".join(f"{key} {value}" for key, value in sorted(counter.items()))
