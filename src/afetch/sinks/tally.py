"""Results → running counts: totals, statuses, error kinds, folded failures, latencies.

Counting only (``summary.py`` renders, ``verdict.py`` judges). Latencies go
into a log-scale histogram (1 % wide buckets), so a run of ten million
requests keeps a few hundred counters, not ten million floats.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

from afetch.errors import ErrorKind
from afetch.models import FetchResult, check_name

_BUCKETS_PER_E = 100  # bucket width: a factor of e**(1/100), about 1 %
#: Failure lines in the summary (one per kind and reason); the rest are counted.
FAILED_SHOWN = 10
#: Distinct (kind, reason) pairs remembered; more are only counted.
_FAILED_KEPT = 200
#: Names listed per folded failure line.
_NAMES_SHOWN = 3


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
        self.warned = 0  # not ok, but --warn-on covers why: counted apart from failures
        self.warnings: dict[tuple[str, str], list[Any]] = {}
        self.latency = LatencyHistogram()
        self.ok_latency = LatencyHistogram()  # what --max-p95 judges
        self.judges_latency = False  # set when --max-p95 is given: one histogram less
        self.input_errors = 0
        self.duplicates = 0
        self.flaky = 0
        self.pacing: list[str] = []  # how hosts were paced (the run's, not the records')
        self.timed = True  # False for reports rebuilt from records: no run to time

    @property
    def not_ok(self) -> int:
        """Records that failed: not ok and not warned."""
        return self.total - self.ok - self.warned

    def add(self, result: FetchResult) -> None:
        self.total += 1
        if result.ok:
            self.ok += 1
            if self.judges_latency:
                self.ok_latency.add(result.elapsed_ms)
            if result.flaky:
                self.flaky += 1
        elif result.warn:
            self.warned += 1
            _fold(self.warnings, result)
        else:
            _fold(self.failed, result)
        if result.status is not None:
            self.by_status[f"{result.status // 100}xx"] += 1
        if result.error is not None:
            self.by_error[result.error.kind.value] += 1
        if result.error is None or result.error.kind not in _NO_LATENCY:
            self.latency.add(result.elapsed_ms)


def _fold(folds: dict[tuple[str, str], list[Any]], result: FetchResult) -> None:
    """Count a record under its (kind, reason): identical failures make one line."""
    kind = result.error.kind.value if result.error else "http"
    reason = "; ".join(result.failed) or (result.error.message if result.error else "")
    name = cut(check_name(result))
    if result.status is not None:
        name += f" ({result.status})"
    entry = folds.get((kind, reason))
    if entry is None:
        if len(folds) >= _FAILED_KEPT:
            entry = folds.setdefault(("other", "more kinds of failure"), [0, []])
        else:
            entry = folds[(kind, reason)] = [0, []]
    entry[0] += 1
    if len(entry[1]) < _NAMES_SHOWN:
        entry[1].append(name)


_NO_LATENCY = frozenset({ErrorKind.INVALID_INPUT, ErrorKind.CANCELLED, ErrorKind.SKIPPED})


def cut(text: str, width: int = 80) -> str:
    """A name shown to a person: at most ``width`` columns, an ellipsis where cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def n_requests(count: int, adjective: str = "") -> str:
    """``1 request``, ``2 requests``: counts people read."""
    return f"{count} {adjective}request{'' if count == 1 else 's'}"
