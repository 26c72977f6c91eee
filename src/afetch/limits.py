"""The open-file budget: how many connections a process may hold at once.

Each request in flight holds a socket, and so does each idle keep-alive
connection. A run that asks for more than the open-file limit allows would
turn requests into "Too many open files" failures one by one; instead the
soft limit is raised to the hard one at start, and if the concurrency
still does not fit, it is lowered once, with a message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Descriptors kept free for everything that is not a connection: stdio, the
#: resolver's sockets and event thread, output files, pipes to workers.
RESERVED = 64
#: Idle keep-alive connections per request slot, where descriptors allow: more
#: idle than in flight lets a host's connections wait for its next request
#: while other hosts' requests run (fewer new connections, no churn).
IDLE_PER_SLOT = 2


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


def plan(concurrency: int, workers: int, limit: int | None) -> Budget:
    """Fit one process's share of ``concurrency`` (and its idle connections) under ``limit``."""
    share = math.ceil(concurrency / max(1, workers))
    wanted_idle = IDLE_PER_SLOT * share
    if limit is None:
        return Budget(share, wanted_idle)
    available = max(2, limit - RESERVED)
    if share + 1 <= available:
        return Budget(share, max(1, min(wanted_idle, available - share)))
    fitted = max(1, available * 3 // 4)
    per = "per worker process " if workers > 1 else ""
    note = (
        f"afetch: the open-file limit is {limit}, so at most {fitted} requests "
        f"{per}run at once (--concurrency {concurrency} lowered to "
        f"{fitted * max(1, workers)}); raise it with 'ulimit -n'"
    )
    return Budget(fitted, max(1, available - fitted), note)
