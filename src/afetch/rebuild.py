"""``afetch --report FILE...``: the reports of a run, rebuilt from its saved records.

After sharded runs, one report from all shards: the records carry every
field the reports use, and the reports depend on nothing else (not the
order records arrive in), so the shards' report equals the one an
unsharded run wrote. Thresholds and ``--baseline`` judge as in a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence

from afetch.config import RunControl, UiOptions
from afetch.errors import OutputFailure
from afetch.sinks.reports import BadRecords, Baseline, Reports, read_records
from afetch.sinks.summary import ExitStatus, closing_lines, exit_status


def rebuild(
    paths: Sequence[str], ui: UiOptions, control: RunControl, baseline: Baseline | None
) -> ExitStatus:
    try:
        return asyncio.run(_rebuild(paths, ui, control, baseline))
    except (BadRecords, OutputFailure) as exc:
        _say(f"afetch: error: {exc}")
        return ExitStatus.USAGE


async def _rebuild(
    paths: Sequence[str], ui: UiOptions, control: RunControl, baseline: Baseline | None
) -> ExitStatus:
    reports = Reports(control, baseline)
    reports.tally.timed = False
    reports.tally.colour = ui.color
    try:
        for path in paths:
            for result in read_records(path):
                await reports.add(result)
    finally:
        await reports.close()
    verdicts = reports.verdicts()
    status = exit_status(reports.tally, exit_zero=ui.exit_zero, verdicts=verdicts)
    passed = exit_status(reports.tally, verdicts=verdicts) is ExitStatus.OK
    for line in reports.publish(verdicts, passed):
        _say(line)
    for line in closing_lines(reports.tally, verdicts, summary=ui.summary):
        _say(line)
    return status


def _say(text: str) -> None:
    with contextlib.suppress(OSError, AttributeError):
        print(text, file=sys.stderr, flush=True)
