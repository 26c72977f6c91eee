"""Reports people read: ``--markdown PATH`` and ``--github`` (step summary and annotations).

Collected record by record in bounded memory (at most ``LISTED`` entries per
list, a heap of the ten slowest, one certificate per host), and rendered from
what the records say alone — no clock, no order of arrival — so a report
rebuilt from saved records (``afetch --report``) equals the one the run
wrote.
"""

from __future__ import annotations

import heapq
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from afetch.models import FetchResult, check_name
from afetch.sinks.tally import Tally
from afetch.sinks.verdict import BaselineDiff, Verdict

#: Entries listed per error kind (and of flaky ones); the rest are counted.
LISTED = 50
#: ``::error`` annotations at most: GitHub shows only the first few per step anyway.
ANNOTATED = 50
SLOWEST = 10
CERTIFICATES = 10


@dataclass(slots=True)
class _Entry:
    index: int
    name: str
    status: int | None
    reason: str
    repro: str | None = None


class RunReport:
    """What the Markdown report and the GitHub annotations say about a run."""

    def __init__(self) -> None:
        self._failures: dict[str, list[tuple[int, _Entry]]] = defaultdict(list)
        self._failure_counts: dict[str, int] = defaultdict(int)
        self._warnings: dict[str, list[tuple[int, _Entry]]] = defaultdict(list)  # --warn-on
        self._warning_counts: dict[str, int] = defaultdict(int)
        self._flaky: list[tuple[int, _Entry]] = []
        self._flaky_count = 0
        self._slowest: list[tuple[float, int, str, int | None]] = []  # min-heap of the slowest
        self._certificates: dict[str, tuple[int, str, str]] = {}  # host → (days, not_after, name)

    def add(self, result: FetchResult) -> None:
        if not result.ok:
            kind = result.error.kind.value if result.error else "http"
            counts, lists = (
                (self._warning_counts, self._warnings)
                if result.warn
                else (self._failure_counts, self._failures)
            )
            counts[kind] += 1
            entries = lists[kind]
            reason = "; ".join(result.failed) or (result.error.message if result.error else "")
            entry = _Entry(result.index, check_name(result), result.status, reason, result.repro)
            _keep(entries, entry)
        elif result.flaky:
            self._flaky_count += 1
            entry = _Entry(result.index, check_name(result), result.status, "")
            _keep(self._flaky, entry)
        if result.status is not None:
            item = (result.elapsed_ms, -result.index, check_name(result), result.status)
            if len(self._slowest) < SLOWEST:
                heapq.heappush(self._slowest, item)
            elif item > self._slowest[0]:
                heapq.heapreplace(self._slowest, item)
        if result.tls is not None and result.tls.get("days_left") is not None:
            host = urlsplit(result.final_url or result.url).hostname or result.url
            seen = self._certificates.get(host)
            fact = (result.tls["days_left"], result.tls["not_after"], host)
            if seen is None or fact < seen:
                self._certificates[host] = fact

    def render(
        self,
        tally: Tally,
        verdicts: Sequence[Verdict],
        passed: bool,
        baseline: BaselineDiff | None = None,
    ) -> str:
        """The Markdown report."""
        mark = "✅ passed" if passed else "❌ failed"
        warned = f", {tally.warned} warned" if tally.warned else ""
        checks = "check" if tally.total == 1 else "checks"
        lines = [
            f"## afetch: {tally.total} {checks}, {tally.ok} ok, {tally.not_ok} not ok{warned}"
            f" — {mark}",
            "",
            "| requests | ok | not ok | "
            + ("warned | " if warned else "")
            + "flaky | p50 | p95 | p99 |",
            "|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if warned else ""),
            f"| {tally.total} | {tally.ok} | {tally.not_ok} | "
            + (f"{tally.warned} | " if warned else "")
            + f"{tally.flaky} | "
            + " | ".join(_ms(tally.latency.percentile(p)) for p in (0.5, 0.95, 0.99))
            + " |",
        ]
        if verdicts:
            lines += ["", "### Thresholds", ""]
            lines += [f"- {'✅' if v.holds else '❌'} {_md(v.text)}" for v in verdicts]
        if baseline is not None:
            lines += _baseline_section(baseline)
        if self._failure_counts:
            lines += ["", "### Failures"]
            for kind in sorted(self._failure_counts):
                lines += ["", f"#### {kind} ({self._failure_counts[kind]})", ""]
                lines += _table(self._failures[kind], self._failure_counts[kind])
        if self._warning_counts:
            lines += ["", "### Warnings (--warn-on: reported, not failing the run)"]
            for kind in sorted(self._warning_counts):
                lines += ["", f"#### {kind} ({self._warning_counts[kind]})", ""]
                lines += _table(self._warnings[kind], self._warning_counts[kind])
        if self._flaky_count:
            lines += ["", f"### Flaky ({self._flaky_count})", ""]
            lines += [f"- {_md(e.name)}" for e in _in_order(self._flaky)]
            if self._flaky_count > len(self._flaky):
                lines.append(f"- … and {self._flaky_count - len(self._flaky)} more")
        if self._slowest:
            lines += ["", f"### Slowest {len(self._slowest)}", "", "| check | status | ms |"]
            lines.append("|---|---:|---:|")
            for ms, _, name, status in sorted(self._slowest, reverse=True):
                lines.append(f"| {_md(name)} | {status} | {ms:.0f} |")
        if self._certificates:
            soonest = sorted(self._certificates.values())[:CERTIFICATES]
            lines += ["", "### Certificates expiring soonest", "", "| host | days left | expires |"]
            lines.append("|---|---:|---|")
            lines += [f"| {_md(host)} | {days} | {after} |" for days, after, host in soonest]
        return "\n".join(lines) + "\n"

    def annotations(self) -> list[str]:
        """GitHub workflow commands: one ``::error`` per failed check, ``::warning`` per
        warned (``--warn-on``) or flaky one."""
        out = _annotate("error", "failed", self._failures, self._failure_counts)
        out += _annotate("warning", "warned", self._warnings, self._warning_counts)
        for entry in _in_order(self._flaky)[:ANNOTATED]:
            out.append(
                f"::warning title={_property(f'afetch: {entry.name}')}::"
                f"{_data(entry.name + ': flaky (failed, then passed on --recheck)')}"
            )
        return out


def _annotate(
    level: str,
    what: str,
    lists: dict[str, list[tuple[int, _Entry]]],
    counts: dict[str, int],
) -> list[str]:
    """One ``::level`` command per check in input order (at most ANNOTATED), then one
    saying how many more."""
    entries = sorted((e for kept in lists.values() for e in _in_order(kept)), key=_by_index)
    out = []
    for entry in entries[:ANNOTATED]:
        status = f" ({entry.status})" if entry.status is not None else ""
        out.append(
            f"::{level} title={_property(f'afetch: {entry.name}')}::"
            f"{_data(entry.name + status + ': ' + entry.reason)}"
        )
    hidden = sum(counts.values()) - min(len(entries), ANNOTATED)
    if hidden > 0:
        checks = "check" if hidden == 1 else "checks"
        out.append(f"::{level} title=afetch::{hidden} more {what} {checks} (see the summary)")
    return out


def append_step_summary(text: str) -> str | None:
    """Append to ``$GITHUB_STEP_SUMMARY``; a reason when it cannot be."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return "GITHUB_STEP_SUMMARY is not set (not running in GitHub Actions?)"
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(text)
    except OSError as exc:
        return f"cannot append to GITHUB_STEP_SUMMARY ({path}): {exc.strerror}"
    return None


def _keep(entries: list[tuple[int, _Entry]], entry: _Entry) -> None:
    """The first ``LISTED`` entries in input order, whatever order they arrive in.

    A heap keyed by minus the index: its top is the latest entry kept.
    """
    if len(entries) < LISTED:
        heapq.heappush(entries, (-entry.index, entry))
    elif entry.index < -entries[0][0]:
        heapq.heapreplace(entries, (-entry.index, entry))


def _in_order(entries: list[tuple[int, _Entry]]) -> list[_Entry]:
    return [entry for _, entry in sorted(entries, reverse=True)]


def _by_index(entry: _Entry) -> int:
    return entry.index


def _table(entries: list[tuple[int, _Entry]], count: int) -> list[str]:
    lines = ["| check | status | reason |", "|---|---:|---|"]
    for entry in _in_order(entries):
        status = "" if entry.status is None else str(entry.status)
        lines.append(f"| {_md(entry.name)} | {status} | {_md(entry.reason)} |")
    if count > len(entries):
        lines.append(f"| … and {count - len(entries)} more | | |")
    return lines + _repro_block(entries)


def _repro_block(entries: list[tuple[int, _Entry]]) -> list[str]:
    """``--repro``'s commands under a kind's table, folded: long lines would swamp it."""
    listed = [entry for entry in _in_order(entries) if entry.repro]
    if not listed:
        return []
    lines = ["", "<details><summary>Reproduce with curl</summary>", ""]
    for entry in listed:
        command = entry.repro or ""
        fence = "`" * max([3, *(len(run) + 1 for run in re.findall("`+", command))])
        lines += [f"- {_md(entry.name)}", "", f"{fence}sh", command, fence, ""]
    return [*lines, "</details>"]


def _baseline_section(diff: BaselineDiff) -> list[str]:
    lines = ["", "### Against the baseline", ""]
    for title, names in (
        ("New failures", diff.new),
        ("Still failing", diff.still),
        ("Fixed", diff.fixed),
    ):
        lines.append(f"- **{title}** ({len(names)})" + (":" if names else ""))
        lines += [f"  - {_md(name)}" for name in names[:LISTED]]
        if len(names) > LISTED:
            lines.append(f"  - … and {len(names) - LISTED} more")
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _md(text: Any) -> str:
    """Text for a Markdown table cell or list item: pipes escaped, one line."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _data(text: str) -> str:
    """A workflow command's message (GitHub's escaping)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """A workflow command's property value."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")
