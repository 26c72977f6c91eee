"""The installed ``afetch`` as a user runs it: pipes, files, exit codes, signals."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import jsonschema
import orjson
import pytest
from click.testing import CliRunner

from afetch.cli import command
from tests.conftest import AFETCH, check_record, lines, run_cli
from tests.server import ServerThread, closed_port


def test_stdin_urls_become_one_record_each(servers: ServerThread) -> None:
    """Piped URLs, comments and blanks: one record per request line, exit 0."""
    run = run_cli(stdin=lines("# list", "", f"{servers.base}/ok", f"{servers.base}/status/204"))
    assert run.returncode == 0, run.stderr
    assert sorted(r["index"] for r in run.records) == [0, 1]
    assert run.stderr == ""


def test_one_failure_makes_exit_status_1_and_exit_zero_makes_it_0(servers: ServerThread) -> None:
    """Exit 1 when a record is not ok; --exit-zero keeps the data and exits 0."""
    args = [f"{servers.base}/ok", f"{servers.base}/status/500", "--retries", "0"]
    assert run_cli(*args, status=1).returncode == 1
    assert run_cli(*args, "--exit-zero").returncode == 0


def test_positional_urls_then_inputs_in_order(servers: ServerThread, tmp_path: Path) -> None:
    """Indices: positional URLs first, then each -i in order, '-' where stdin appears."""
    first = tmp_path / "first.txt"
    first.write_text(f"{servers.base}/ok?f=1\n")
    packed = tmp_path / "second.txt.gz"
    packed.write_bytes(gzip.compress(f"{servers.base}/ok?g=1\n".encode()))
    run = run_cli(
        f"{servers.base}/ok?arg=1",
        "-i",
        str(first),
        "-i",
        "-",
        "-i",
        str(packed),
        stdin=lines(f"{servers.base}/ok?stdin=1"),
    )
    assert run.returncode == 0, run.stderr
    order = [run.by_index()[i]["url"].rsplit("?", 1)[1] for i in range(4)]
    assert order == ["arg=1", "f=1", "stdin=1", "g=1"]


def test_output_file_and_invalid_input_records(servers: ServerThread, tmp_path: Path) -> None:
    """-o writes records to a file; bad lines are records with attempts 0, the run goes on."""
    out = tmp_path / "out.jsonl"
    stdin = lines(f"{servers.base}/ok", "ftp://x/", '{"url": 1}', "x" * 70_000) + b"\xff\xfe\n"
    run = run_cli("-o", str(out), stdin=stdin, status=1)
    assert run.returncode == 1
    assert run.stdout == b""
    records = [check_record(orjson.loads(line)) for line in out.read_bytes().splitlines()]
    assert len(records) == 5
    invalid = [r for r in records if r["error"] and r["error"]["type"] == "invalid_input"]
    assert len(invalid) == 4
    assert {r["attempts"] for r in invalid} == {0}


def test_json_request_lines_echo_their_id(servers: ServerThread) -> None:
    """A JSON line's id comes back unchanged."""
    line = json.dumps({"url": f"{servers.base}/ok", "id": {"row": 7}})
    (record,) = run_cli(stdin=lines(line)).records
    assert record["id"] == {"row": 7}


def test_schema_is_valid_json_schema_and_matches_output(servers: ServerThread) -> None:
    """--schema prints a draft 2020-12 schema that real records validate against."""
    schema = json.loads(run_cli("--schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    run = run_cli(
        f"{servers.base}/redirect/2",
        f"http://127.0.0.1:{closed_port()}/",
        "--retries",
        "0",
        status=1,
    )
    records = run.records
    assert len(records) == 2  # a test that validates nothing proves nothing
    assert {bool(record["ok"]) for record in records} == {True, False}
    for record in records:
        jsonschema.validate(record, schema)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["-t", "soon"], "--timeout"),
        (["--max-body", "lots"], "--max-body"),
        (["-c", "0"], "--concurrency"),
        (["-H", "X-A: b\r\nX-B: c"], "--header"),
        (["--connect-timeout", "-1"], "--connect-timeout"),
        (["--retry-max-wait", "x"], "--retry-max-wait"),
        (["-X", "G ET"], "--method"),
    ],
)
def test_bad_option_values_are_usage_errors_naming_the_option(args: list[str], option: str) -> None:
    """Exit 2, nothing fetched, and the message names the option."""
    result = CliRunner().invoke(command, [*args, "http://127.0.0.1:1/"])
    assert result.exit_code == 2
    assert option in result.stderr
    assert result.stdout == ""


def test_a_missing_input_file_is_a_usage_error() -> None:
    """-i of a file that does not exist: exit 2 before anything runs."""
    result = CliRunner().invoke(command, ["-i", "/no/such/file"])
    assert result.exit_code == 2
    assert "/no/such/file" in result.stderr


def test_an_output_in_a_missing_folder_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    """-o into a folder that does not exist: exit 2, the message names -o's file (not the
    side file afetch writes beside it)."""
    target = tmp_path / "no" / "such" / "out.jsonl"
    result = CliRunner().invoke(command, ["-o", str(target), "http://127.0.0.1:9/"])
    assert result.exit_code == 2
    assert f"cannot write {target}: No such file or directory" in result.stderr


def test_clirunner_stdin_and_version(servers: ServerThread) -> None:
    """The command works in-process with a stand-in stdin; --version needs no network."""
    result = CliRunner().invoke(command, [], input=f"{servers.base}/ok\n")
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout)["status"] == 200
    assert "afetch" in CliRunner().invoke(command, ["--version"]).stdout


def test_terminal_stdin_prints_a_hint_and_exits_2() -> None:
    """No URLs and a terminal on stdin: a usage hint, not a hang."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [AFETCH], stdin=secondary, capture_output=True, timeout=30, check=False
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert proc.returncode == 2
    assert b"afetch -i urls.txt" in proc.stderr


def test_summary_goes_to_stderr_only(servers: ServerThread) -> None:
    """--summary prints counts and percentiles on stderr; stdout holds only records."""
    run = run_cli(
        f"{servers.base}/ok", f"{servers.base}/status/404", "--summary", "--retries", "0", status=1
    )
    assert "2 requests, 1 ok, 1 not ok" in run.stderr
    assert "p95" in run.stderr
    assert "4xx 1" in run.stderr
    assert len(run.records) == 2


def test_verbose_logs_failures_and_quiet_silences_everything(servers: ServerThread) -> None:
    """-v names each failed request on stderr; -q wins over --summary."""
    url = f"{servers.base}/status/500"
    assert "status 500" in run_cli(url, "-v", "--retries", "0", status=1).stderr
    assert run_cli(url, "-q", "--summary", "--retries", "0", status=1).stderr == ""


def test_head_closes_the_pipe_and_afetch_exits_quietly(servers: ServerThread) -> None:
    """afetch ... | head -1: exits at once, no traceback, no BrokenPipe noise."""
    many = lines(*[f"{servers.base}/slow?s=0.05"] * 2000)
    started = time.monotonic()
    proc = subprocess.run(
        f"{AFETCH} -c 20 | head -1",
        shell=True,
        input=many,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - started < 10
    assert len(proc.stdout.splitlines()) == 1
    assert proc.stderr == b""


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_signals_flush_cancelled_records_and_exit(
    servers: ServerThread, sig: int, code: int
) -> None:
    """SIGINT/SIGTERM/SIGHUP: finished records kept, in-flight ones 'cancelled', whole lines,
    130/143/129."""
    stdin = lines(f"{servers.base}/ok", *[f"{servers.base}/hang"] * 5)
    proc = subprocess.Popen(
        [AFETCH, "--summary"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(stdin)
    proc.stdin.flush()  # stdin stays open: an endless producer
    first = proc.stdout.readline()  # the /ok record proves the run is under way
    assert orjson.loads(first)["status"] == 200
    time.sleep(0.3)
    proc.send_signal(sig)
    rest, stderr = proc.communicate(timeout=20)
    assert proc.returncode == code
    records = [check_record(orjson.loads(line)) for line in rest.splitlines()]
    assert len(records) == 5
    assert {r["error"]["type"] for r in records} == {"cancelled"}
    assert rest.endswith(b"\n")
    assert b"Traceback" not in stderr
    assert b"Unclosed" not in stderr
    assert b"6 requests" in stderr


def test_ctrl_c_before_the_run_starts_is_130_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C while afetch is still starting (here: blocked opening a --config FIFO nobody
    writes) ends it with 130 and says nothing — not a KeyboardInterrupt traceback."""
    fifo = tmp_path / "afetch.toml"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [AFETCH, "--config", str(fifo), "http://127.0.0.1:9/"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.8)  # well into the open() that waits for a writer
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=20)
    assert (proc.returncode, stdout, stderr) == (130, b"", b"")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_closed_terminal_ends_the_run_with_whole_records(
    servers: ServerThread, tmp_path: Path, workers: str
) -> None:
    """The terminal afetch runs in goes away (ssh dropped): the kernel's SIGHUP stops it as
    SIGTERM would — -o FILE holds whole records, the unfinished ones cancelled, exit 129 —
    though stderr (that terminal) can no longer be written. Worker processes, which get the
    SIGHUP too, leave the decision to the coordinator."""
    import fcntl
    import termios

    master, terminal = pty.openpty()
    out = tmp_path / "out.jsonl"

    def own_terminal() -> None:  # a session whose controlling terminal is the pty
        os.setsid()
        fcntl.ioctl(terminal, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [AFETCH, "-o", str(out), "--summary", "--progress", "--workers", workers,
         f"{servers.base}/ok",
         *[f"{servers.base}/hang?i={i}" for i in range(4)]],
        stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
        preexec_fn=own_terminal, pass_fds=(terminal,),
    )  # fmt: skip
    os.close(terminal)
    os.set_blocking(master, False)
    deadline = time.monotonic() + 10
    while b'"status":200' not in (out.read_bytes() if out.exists() else b""):
        assert time.monotonic() < deadline, "the /ok record never came"
        with contextlib.suppress(OSError):
            os.read(master, 65536)  # keep the terminal drained
        time.sleep(0.05)
    os.close(master)  # hang up
    assert proc.wait(timeout=20) == 129
    records = [check_record(orjson.loads(line)) for line in out.read_bytes().splitlines()]
    assert sorted(r["index"] for r in records) == [0, 1, 2, 3, 4]
    assert [r["error"]["type"] for r in records if r["index"]] == ["cancelled"] * 4


def test_python_dash_m_works(servers: ServerThread) -> None:
    """python -m afetch is the same command."""
    proc = subprocess.run(
        [str(Path(AFETCH).with_name("python")), "-m", "afetch", f"{servers.base}/ok"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0
    assert orjson.loads(proc.stdout)["ok"] is True


def _without_coverage() -> dict[str, str]:
    """The environment of a user's shell: no coverage hooks, so afetch takes its fast exit."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("COV")}
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; print('coverage' in sys.modules)"],
        env=env,
        capture_output=True,
        check=True,
    )
    assert probe.stdout.strip() == b"False"  # otherwise this would test the ordinary exit
    return env


def test_fast_exit_keeps_every_record_and_the_exit_status(servers: ServerThread) -> None:
    """Without the interpreter's teardown: records, summary and status all intact."""
    env = _without_coverage()
    urls = [f"{servers.base}/ok", f"{servers.base}/status/404"] * 50
    run = run_cli(*urls, "--summary", env=env, status=1)
    assert run.returncode == 1
    assert sorted(r["index"] for r in run.records) == list(range(100))
    assert "afetch: 100 requests, 50 ok, 50 not ok" in run.stderr
    usage = run_cli("--no-such-option", env=env, status=2)
    assert usage.returncode == 2
    assert "No such option" in usage.stderr


def test_fast_exit_after_the_reader_left(servers: ServerThread) -> None:
    """| head -1 without teardown: no traceback, no 'Exception ignored' on stderr."""
    env = _without_coverage()
    proc = subprocess.Popen(
        [AFETCH, *[f"{servers.base}/ok?i={i}" for i in range(300)], "--no-summary"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert orjson.loads(proc.stdout.readline())["ok"] is True
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=30) in (0, 141)
    assert stderr == b""


def test_an_input_that_fails_before_anything_is_fetched_is_exit_2(tmp_path: Path) -> None:
    """An unreadable input before any request: a message naming it, exit 2."""
    bad = tmp_path / "urls.txt.gz"
    bad.write_bytes(b"not gzip at all")
    run = run_cli("-i", str(bad), status=2)
    assert run.returncode == 2
    assert f"afetch: error: {bad}: Not a gzipped file" in run.stderr
    assert run.stdout == b""


def test_an_input_that_fails_midway_keeps_the_records_and_exits_1(
    servers: ServerThread, tmp_path: Path
) -> None:
    """An input failing midway keeps the records so far and exits 1."""
    half = tmp_path / "half.gz"
    half.write_bytes(gzip.compress(lines(f"{servers.base}/ok")) + b"garbage after it")
    run = run_cli("-i", str(half), status=1)
    assert run.returncode == 1
    assert [r["ok"] for r in run.records] == [True]
    assert f"afetch: error: {half}" in run.stderr


def test_help_groups_every_option_once_and_ends_with_examples() -> None:
    """--help lists every option once, in its group, and ends with examples."""
    from afetch.cli.help import HELP_GROUPS

    result = CliRunner().invoke(command, ["--help"], terminal_width=100)
    assert result.exit_code == 0
    text = result.output
    titles = [title for title, _ in HELP_GROUPS]
    positions = [text.index(f"\n{title}:\n") for title in titles]
    assert positions == sorted(positions)
    assert text.index("Examples:") > positions[-1]
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert text.count(f"  {param.opts[0]}") + text.count(f" {param.opts[0]},") >= 1, param
    listed = [name for _, names in HELP_GROUPS for name in names]
    assert len(listed) == len(set(listed))
    assert {p.name for p in command.params if isinstance(p, click.Option)} <= set(listed)


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o"),
        ("zsh", "#compdef afetch"),
        ("fish", "complete --no-files --command afetch"),
    ],
)
def test_shell_completion_scripts(shell: str, marker: str) -> None:
    """The scripts the README tells users to install, as the installed command prints them."""
    script = subprocess.run(
        [AFETCH], env={**os.environ, "_AFETCH_COMPLETE": f"{shell}_source"},
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert marker in script


def test_bash_completion_completes_options() -> None:
    """bash completion (click's) completes a long option from its start."""
    env = {**os.environ, "_AFETCH_COMPLETE": "bash_complete", "COMP_CWORD": "1"}
    done = subprocess.run(
        [AFETCH], env={**env, "COMP_WORDS": "afetch --expect-c"},
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert done.split() == ["plain,--expect-cert-days"]


@pytest.mark.parametrize(
    ("color", "env", "ansi"),
    [("always", {}, True), ("never", {}, False), ("auto", {"NO_COLOR": "1"}, False)],
)
def test_color_in_the_summary(
    servers: ServerThread, color: str, env: dict[str, str], ansi: bool
) -> None:
    """--color always paints the summary; never and NO_COLOR do not."""
    run = run_cli(f"{servers.base}/status/500", "--retries", "0", "--summary",
                  "--color", color, env=env, status=1)  # fmt: skip
    assert ("\x1b[31m" in run.stderr) is ansi
