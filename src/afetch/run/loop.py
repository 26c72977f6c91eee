"""The event loop and collector settings every afetch process runs with."""

from __future__ import annotations

import gc
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio


def loop_factory() -> type[asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed (``afetch-cli[speed]``), asyncio's own loop otherwise."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    loop_class: type[asyncio.AbstractEventLoop] = uvloop.Loop
    return loop_class


def tune_gc() -> None:
    """Fewer and cheaper collections for a run that makes many short-lived objects.

    What is loaded by now (modules, classes) is frozen out of the collector's
    sight, and the youngest generation is collected every 20 000 allocations
    instead of 700: 5 % fewer instructions per request (callgrind, 3 000
    requests). Cycles are still collected, only in larger batches.
    """
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
