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
    """Under a terminal the bar has a total and counts, and never shares a line with a record."""
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
    full = re.compile(r"\d+%\|.*\d+/40 \[.*req/s, ok \d+, failed 0, running (\d+)")
    assert any(full.search(bar) for bar in bars), bars
    running = [int(m.group(1)) for bar in bars if (m := full.search(bar))]
    assert max(running) <= 4  # requests being fetched: -c 4, not what is read ahead
    # The summary is on by default on a terminal, in colour (NO_COLOR unset).
    assert "afetch: 40 requests, 40 ok, \x1b[32m0 not ok\x1b[0m in " in screen


def test_forced_progress_off_a_terminal_prints_plain_lines(
    servers: ServerThread, tmp_path: Path
) -> None:
    """--progress off a terminal prints plain lines, no carriage returns."""
    source = tmp_path / "urls.txt"
    source.write_text("".join(f"{servers.base}/ok?i={i}\n" for i in range(7)))
    run = run_cli("-i", str(source), "--progress", "--retries", "0")
    assert "\r" not in run.stderr
    (line,) = [line for line in run.stderr.splitlines() if " done (" in line]
    assert re.fullmatch(r"afetch: 7/7 done \(ok 7, failed 0, running 0\), [\d.]+ req/s", line)


def test_the_total_counts_the_requests_this_run_fetches(
    servers: ServerThread, tmp_path: Path
) -> None:
    """Comments and blank lines are not requests; a shard, what --resume found done and
    what --dedupe skips are not fetched: the total says what this run will do."""
    source = tmp_path / "urls.txt"
    body = "".join(f"{servers.base}/ok?i={i}\n" for i in range(10))
    source.write_text(f"\ufeff# list\n\n   \n  # indented comment\n{body}{servers.base}/ok?i=0\n")

    def final(*args: str) -> str:
        run = run_cli("-i", str(source), "--progress", "--retries", "0", *args)
        return [line for line in run.stderr.splitlines() if " done (" in line][-1]

    assert final().startswith("afetch: 11/11 done")
    assert final("--shard", "2/4").startswith("afetch: 3/3 done")  # indices 1, 5, 9
    assert final("--dedupe").startswith("afetch: 10/10 done")
    out = tmp_path / "out.jsonl"
    assert run_cli("-i", str(source), "--shard", "1/2", "-o", str(out)).returncode == 0
    resumed = final("-o", str(out), "--resume", "--resume-force")
    assert resumed.startswith("afetch: 5/5 done"), resumed
