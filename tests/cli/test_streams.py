"""A closed standard stream (cron, daemons: ``<&-``, ``>&-``, ``2>&-``) never breaks a run.

Real processes through a shell, both transports: records are kept, the exit
status is honest, and messages name what is really wrong.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from tests.conftest import AFETCH, check_record
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def shell(command: str, client: str) -> subprocess.CompletedProcess[bytes]:
    """``afetch --http-client CLIENT …`` run by bash with the redirections given."""
    return subprocess.run(
        ["bash", "-c", command.replace("afetch", f"{AFETCH} --http-client {client}", 1)],
        capture_output=True,
        timeout=30,
        check=False,
    )


def records(data: bytes) -> list[dict[str, object]]:
    return [check_record(orjson.loads(line)) for line in data.splitlines()]


@pytest.mark.parametrize("closed", ["<&-", "2>&-", "<&- 2>&-"])
def test_a_closed_stdin_or_stderr_keeps_every_record(
    servers: ServerThread, each_transport: str, closed: str
) -> None:
    """Sockets never take fd 0 or 2 (uvloop aborted closing one); records and exit 0 stay."""
    urls = " ".join(f"{servers.base}/ok?i={i}" for i in range(5))
    proc = shell(f"afetch {urls} --workers 1 {closed}", each_transport)
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["index"] for r in records(proc.stdout)) == list(range(5))  # type: ignore[type-var]
    assert b"Assertion" not in proc.stderr
    assert b"Traceback" not in proc.stderr


def test_a_closed_stderr_keeps_a_failing_run_honest(
    servers: ServerThread, each_transport: str
) -> None:
    """With nowhere to say it, a failure still exits 1 and its record is written."""
    proc = shell(f"afetch {servers.base}/status/500 --retries 0 --summary 2>&-", each_transport)
    assert proc.returncode == 1
    (record,) = records(proc.stdout)
    assert record["status"] == 500


def test_a_closed_stdout_with_an_output_file_is_ok(
    servers: ServerThread, each_transport: str, tmp_path: Path
) -> None:
    """-o FILE needs no stdout: every record in the file, exit 0, nothing on stderr."""
    out = tmp_path / "o.jsonl"
    proc = shell(f"afetch -o {out} {servers.base}/ok {servers.base}/ok?b >&-", each_transport)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert len(records(out.read_bytes())) == 2


def test_every_stream_closed_with_an_output_file(
    servers: ServerThread, each_transport: str, tmp_path: Path
) -> None:
    """All three standard streams closed: -o FILE still gets every record, exit 0."""
    out = tmp_path / "o.jsonl"
    proc = shell(f"afetch -o {out} {servers.base}/ok <&- >&- 2>&-", each_transport)
    assert proc.returncode == 0
    assert len(records(out.read_bytes())) == 1


def test_stdout_closed_is_one_line_and_exit_1(servers: ServerThread, each_transport: str) -> None:
    """Stdout closed without -o: one line on stderr, exit 1."""
    proc = shell(f"afetch {servers.base}/ok >&-", each_transport)
    assert proc.returncode == 1
    assert proc.stderr.decode().strip() == (
        "afetch: error: cannot write records: standard output is closed;"
        " -o FILE writes them to a file"
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ("", "no URLs given and standard input is closed"),
        ("{base}/ok -i -", "-i -: standard input is closed"),
    ],
)
def test_no_urls_and_stdin_closed_says_so(
    servers: ServerThread, each_transport: str, args: str, words: str
) -> None:
    """Not "is a terminal": the message names what is wrong, exit 2 before fetching."""
    proc = shell(f"afetch {args.format(base=servers.base)} <&-", each_transport)
    assert proc.stdout == b""
    assert proc.returncode == 2
    assert words in proc.stderr.decode()
    assert "terminal" not in proc.stderr.decode()
