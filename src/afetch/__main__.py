"""``python -m afetch`` and the ``afetch`` console script.

A bare ``--version`` is answered here, before click and the rest are imported:
scripts probe it often and it should cost no more than starting Python.
"""

import gc
import sys

from afetch._version import __version__


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        print(f"afetch, version {__version__}")
        return
    from afetch.cli import main as cli_main

    tune_gc()
    cli_main()


def tune_gc() -> None:
    """Fewer and cheaper collections for a run that makes many short-lived objects.

    What is loaded by now (modules, classes) is frozen out of the collector's
    sight, and the youngest generation is collected every 20 000 allocations
    instead of 700: 5 % fewer instructions per request (callgrind, 3 000
    requests). Cycles are still collected, only in larger batches.
    """
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


if __name__ == "__main__":
    main()
