"""Progress on stderr: a bar with a total under a real terminal, plain lines elsewhere."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
from pathlib import Path

from tests.conftest import AFETCH, run_cli
from tests.server import ServerThread


def _in_a_terminal(*args: str) -> tuple[int, str]:
    """Run afetch with stdout and stderr on one pseudo-terminal, as `afetch URL` in a shell."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    proc = subprocess.Popen(
        [AFETCH, *args], stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 10)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other side closed: afetch is done
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.wait(timeout=30), seen.decode("utf-8", "replace")


def test_the_bar_has_a_total_and_counts_and_never_shares_a_line_with_a_record(
    servers: ServerThread,
) -> None:
    urls = [f"{servers.base}/slow?s=0.05&i={i}" for i in range(40)]
    status, screen = _in_a_terminal(*urls, "-c", "4")
    assert status == 0
    pieces = [piece for piece in re.split(r"[\r\n]", screen) if piece.strip()]
    records = [piece for piece in pieces if '"index"' in piece]
    assert len(records) == 40, screen
    glued = [piece for piece in records if not piece.startswith('{"index"')]
    assert not glued, glued
    bars = [piece for piece in pieces if "/40 [" in piece]
    assert bars, screen
    full = re.compile(r"\d+%\|.*\d+/40 \[.*req/s, ok \d+, failed 0, in flight \d+")
    assert any(full.search(bar) for bar in bars), bars
    # The summary is on by default on a terminal, in colour (NO_COLOR unset).
    assert "afetch: 40 requests, 40 ok, \x1b[32m0 not ok\x1b[0m in " in screen


def test_forced_progress_off_a_terminal_prints_plain_lines(
    servers: ServerThread, tmp_path: Path
) -> None:
    source = tmp_path / "urls.txt"
    source.write_text("".join(f"{servers.base}/ok?i={i}\n" for i in range(7)))
    run = run_cli("-i", str(source), "--progress", "--retries", "0")
    assert "\r" not in run.stderr
    (line,) = [line for line in run.stderr.splitlines() if " done (" in line]
    assert re.fullmatch(r"afetch: 7/7 done \(ok 7, failed 0, in flight 0\), [\d.]+ req/s", line)
