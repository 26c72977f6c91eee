"""The program over the library: ``afetch`` on the command line.

``options`` is the click table, ``command`` parses it into the run's values
and dispatches, ``session`` runs one fetch (signals, sinks, closing words),
``rebuild`` is ``afetch --report``, ``resume`` everything ``--resume`` checks,
``settings`` the option defaults from files and the environment, and
``streams`` the standard streams, decided once and passed down.
"""

from __future__ import annotations

import os
import sys

import click

from afetch.cli.command import command
from afetch.cli.streams import Streams

__all__ = ["command", "main"]


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    try:
        from afetch.cli.settings import ENV_PREFIX, config_path, default_map, unknown_variables

        path = config_path(argv)
        defaults = default_map(command, path)
    except click.UsageError as exc:
        exc.show()
        sys.exit(2)
    for name in unknown_variables(command, os.environ):
        Streams.current().say(f"afetch: warning: {name} is not an afetch setting (ignored)")
    try:
        command.main(
            args=argv,
            prog_name="afetch",
            default_map=defaults,
            auto_envvar_prefix=ENV_PREFIX,
            obj=path,
        )
    except KeyboardInterrupt:  # Ctrl-C before the run installed its own handler
        sys.exit(130)
