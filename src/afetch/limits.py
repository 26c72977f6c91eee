"""The open-file budget: how many connections a process may hold at once.

Each request in flight holds a socket, and so does each idle keep-alive
connection. A run that asks for more than the open-file limit allows would
turn requests into "Too many open files" failures one by one; instead the
soft limit is raised to the hard one at start, and if the concurrency
still does not fit, it is lowered once, with a message.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

#: Descriptors kept free, beyond those already open when the run is planned
#: (stdio, the output, Python's own), for what opens later and is not a
#: connection: the event loop's epoll, eventfd and signal pipe, the resolver's
#: sockets, an input file and its gzip reader, the JUnit side file, --output-dir
#: bodies being written. Each worker process adds its three pipes.
RESERVED = 16
RESERVED_PER_WORKER = 3
#: Idle keep-alive connections per request slot, where descriptors allow: more
#: idle than in flight lets a host's connections wait for its next request
#: while other hosts' requests run (fewer new connections, no churn). Measured:
#: 5 000 URLs over 100 hosts at -c 100 opened 849 connections with 2, 507 with
#: 3, 463 with 4 or more (aiohttp, which keeps every idle one: 459).
IDLE_PER_SLOT = 4


@dataclass(frozen=True, slots=True)
class Budget:
    """Per process: requests in flight, idle connections kept, and why it was lowered."""

    concurrency: int
    idle: int
    note: str | None = None


def raise_open_file_limit() -> int | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the limit now in force (None: unknown)."""
    try:
        import resource
    except ImportError:  # not on this platform: nothing to raise or to check
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if (hard != resource.RLIM_INFINITY and soft < hard) or soft == resource.RLIM_INFINITY:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return None if soft == resource.RLIM_INFINITY else soft


def plan(concurrency: int, workers: int, limit: int | None, in_use: int | None = None) -> Budget:
    """Fit one process's share of ``concurrency`` (and its idle connections) under ``limit``.

    ``in_use`` is how many descriptors are open now (counted, not guessed:
    under ``ulimit -n 64`` a worst-case reserve left room for one request).
    """
    share = math.ceil(concurrency / max(1, workers))
    wanted_idle = IDLE_PER_SLOT * share
    if limit is None:
        return Budget(share, wanted_idle)
    reserved = (open_descriptors() if in_use is None else in_use) + RESERVED
    if workers > 1:
        reserved += RESERVED_PER_WORKER * workers
    available = max(2, limit - reserved)
    if share + 1 <= available:
        return Budget(share, max(1, min(wanted_idle, available - share)))
    fitted = max(1, available - 1)  # one spare: a connection closing while its successor opens
    per = " per worker process" if workers > 1 else ""
    note = (
        f"afetch: the open-file limit is {limit}, so at most {fitted}"
        f" request{'s' * (fitted != 1)}{per} run at once (--concurrency {concurrency}"
        f" lowered to {fitted * max(1, workers)}); raise it with 'ulimit -n'"
    )
    return Budget(fitted, 1, note)


def open_descriptors() -> int:
    """Descriptors open in this process now (a generous guess where it cannot be counted)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder)) - 1  # listing the folder opens one itself
        except OSError:
            continue
    return 64
