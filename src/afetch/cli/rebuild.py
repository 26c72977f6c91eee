"""``afetch --report FILE...``: the reports of a run, rebuilt from its saved records.

After sharded runs, one report from all shards: the records carry every
field the reports use, and the reports depend on nothing else (not the
order records arrive in), so the shards' report equals the one an
unsharded run wrote. Thresholds and ``--baseline`` judge as in a run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from afetch.cli.streams import Streams
from afetch.config import RunControl, UiOptions
from afetch.errors import OutputFailure
from afetch.sinks.reports import BadRecords, Baseline, Ending, Reports, latest_records
from afetch.sinks.verdict import ExitStatus


def rebuild(
    paths: Sequence[str],
    ui: UiOptions,
    control: RunControl,
    baseline: Baseline | None,
    env: Streams,
) -> ExitStatus:
    try:
        return asyncio.run(_rebuild(paths, ui, control, baseline, env))
    except (BadRecords, OutputFailure) as exc:
        env.say(f"afetch: error: {exc}")
        return ExitStatus.USAGE


async def _rebuild(
    paths: Sequence[str],
    ui: UiOptions,
    control: RunControl,
    baseline: Baseline | None,
    env: Streams,
) -> ExitStatus:
    _say = env.say
    reports = Reports(control, baseline)
    reports.tally.timed = False
    records, replaced = latest_records(paths, env.stdin_bytes)
    if replaced:
        _say(
            f"afetch: --report: {replaced} earlier record{'s' * (replaced != 1)}"
            " of the same checks replaced by later ones"
        )
    if reports.junit is not None:  # the records' own times, not how long rebuilding took
        reports.junit.seconds = sum(result.elapsed_ms for result in records) / 1000
    try:
        for result in records:
            await reports.add(result)
    finally:
        await reports.close()
    end = reports.finish(Ending(), ui)
    for line in end.publish():
        _say(line)
    for line in end.closing_lines():
        _say(line)
    return end.status()
