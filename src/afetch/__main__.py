"""``python -m afetch`` and the ``afetch`` console script.

A bare ``--version`` is answered here, before click and the rest are imported:
scripts probe it often and it should cost no more than starting Python.
"""

import sys

from afetch._version import __version__


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        print(f"afetch, version {__version__}")
        return
    from afetch.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
