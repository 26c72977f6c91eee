"""--resume: exactly once across kills, torn lines repaired, the existing file read leanly."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import orjson
from click.testing import CliRunner

from afetch.cli import command
from afetch.sinks.resume import IndexBitmap, recorded_indices, repair_torn_tail
from tests.conftest import AFETCH, kill_then_resume, lines, run_cli
from tests.server import ServerThread


def test_bitmap_holds_sparse_and_dense_indices() -> None:
    """One bit per index, growing as needed; count ignores repeats."""
    bitmap = IndexBitmap()
    for index in (0, 7, 8, 1_000_003, 7):
        bitmap.add(index)
    assert bitmap.count == 4
    assert 1_000_003 in bitmap
    assert 8 in bitmap
    assert 9 not in bitmap
    assert 5_000_000 not in bitmap


def test_a_torn_last_line_is_cut_off(tmp_path: Path) -> None:
    """A record cut by a kill is removed so its index is fetched again."""
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"index":0,"a":1}\n{"index":1,"a":1}\n{"index":2,"a"')
    assert repair_torn_tail(str(path)) == len(b'{"index":2,"a"')
    assert path.read_bytes() == b'{"index":0,"a":1}\n{"index":1,"a":1}\n'
    assert repair_torn_tail(str(path)) == 0
    whole_torn = tmp_path / "torn.jsonl"
    whole_torn.write_bytes(b'{"index":0')
    repair_torn_tail(str(whole_torn))
    assert whole_torn.read_bytes() == b""


def test_recorded_indices_scans_a_large_file(tmp_path: Path) -> None:
    """200 000 records, read in blocks (how fast: the bench's business)."""
    path = tmp_path / "big.jsonl"
    with path.open("wb") as handle:
        for index in range(0, 400_000, 2):
            handle.write(b'{"index":%d,"url":"http://h/x","ok":true}\n' % index)
    done = recorded_indices(str(path))
    assert done.count == 200_000
    assert 399_998 in done
    assert 1 not in done


def test_only_whole_valid_records_count_as_done(tmp_path: Path) -> None:
    """Garbage or half-written lines that start like a record are fetched again."""
    path = tmp_path / "out.jsonl"
    path.write_bytes(
        b'{"index":0,"ok":true}\n'
        b'{"index":1,"url":"http://h/ torn in the mid\n'
        b'{"index":2,garbage}\n'
        b'{"index":3,"ok":false}\n'
        b'{"index":4,"no_ok_key":1}\n'
    )
    done = recorded_indices(str(path))
    assert [i for i in range(6) if i in done] == [0, 3]


def test_an_output_that_is_also_an_input_is_refused(tmp_path: Path) -> None:
    """-i list.txt -o list.txt would empty the list: exit 2, the list untouched."""
    urls = tmp_path / "list.txt"
    urls.write_text("http://127.0.0.1:1/\n")
    result = CliRunner().invoke(command, ["-i", str(urls), "-o", str(urls)])
    assert result.exit_code == 2
    assert "also an input" in result.stderr
    assert urls.read_text() == "http://127.0.0.1:1/\n"


def test_resume_needs_an_output_file() -> None:
    """--resume without -o FILE is a usage error."""
    result = CliRunner().invoke(command, ["--resume", "http://127.0.0.1:1/"])
    assert result.exit_code == 2
    assert "-o FILE" in result.stderr


def test_resume_skips_recorded_indices_and_appends(servers: ServerThread, tmp_path: Path) -> None:
    """Indices already in FILE are not fetched again; the rest are appended."""
    out = tmp_path / "out.jsonl"
    urls = lines(*[f"{servers.base}/count/resume-skip?s=0&i={i}" for i in range(6)])
    out.write_bytes(b'{"index":1,"ok":true}\n{"index":4,"ok":true}\n')
    run = run_cli("-o", str(out), "--resume", stdin=urls)
    assert run.returncode == 0, run.stderr
    indices = sorted(orjson.loads(line)["index"] for line in out.read_bytes().splitlines())
    assert indices == [0, 1, 2, 3, 4, 5]
    assert servers.state.hits["resume-skip"] == 4


def test_kill_9_at_random_moments_then_resume_gives_every_index_once(
    servers: ServerThread, tmp_path: Path
) -> None:
    """SIGKILL mid-run, any number of times, then --resume: exactly once per index."""
    total = 300
    source = tmp_path / "urls.txt"
    source.write_text("".join(f"{servers.base}/slow?s=0.0{i % 10}&i={i}\n" for i in range(total)))
    out = tmp_path / "out.jsonl"
    final, records = kill_then_resume(source, out, ["-c", "20"], kills=5, seed=7, window=(0.4, 1.2))
    assert final.returncode == 0, final.stderr
    assert sorted(r["index"] for r in records) == list(range(total))
    assert all(r["ok"] for r in records)


def test_interrupted_requests_leave_no_record_with_resume(
    servers: ServerThread, tmp_path: Path
) -> None:
    """With --resume, SIGINT leaves no cancelled records: the next run fetches those."""
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [AFETCH, "-o", str(out), "--resume"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.write(lines(f"{servers.base}/ok", *[f"{servers.base}/hang"] * 3))
    proc.stdin.flush()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (out.exists() and out.read_bytes()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    (record,) = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert record["ok"] is True
    assert os.path.getsize(out) > 0


def _list_and_output(servers: ServerThread, tmp_path: Path, count: int) -> tuple[Path, Path]:
    source = tmp_path / "urls.txt"
    source.write_text("".join(f"{servers.base}/ok?i={i}\n" for i in range(count)))
    return source, tmp_path / "out.jsonl"


def test_resume_against_a_changed_input_is_refused_and_leaves_file_untouched(
    servers: ServerThread, tmp_path: Path
) -> None:
    """A line added at the top shifts every index: resuming would mix two runs."""
    source, out = _list_and_output(servers, tmp_path, 4)
    first = run_cli("-i", str(source), "-o", str(out), "--resume")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "out.jsonl.resume.json").exists()
    out.write_bytes(out.read_bytes() + b'{"index":9,"torn')  # must stay as it is too
    before = out.read_bytes()

    source.write_text(f"{servers.base}/ok?new\n" + source.read_text())
    refused = run_cli("-i", str(source), "-o", str(out), "--resume", status=2)
    assert refused.returncode == 2
    assert "the input differs from the run that wrote" in refused.stderr
    assert "--resume-force" in refused.stderr
    assert out.read_bytes() == before

    other_options = run_cli("-i", str(source), "-o", str(out), "--resume", "-X", "HEAD", status=2)
    assert other_options.returncode == 2
    assert "request options" in other_options.stderr

    forced = run_cli("-i", str(source), "-o", str(out), "--resume-force")
    assert forced.returncode == 0, forced.stderr
    indices = sorted(orjson.loads(line)["index"] for line in out.read_bytes().splitlines())
    assert indices == [0, 1, 2, 3, 4]  # the torn line was cut; index 4 is the new last line


def test_resume_with_the_same_input_and_other_tuning_goes_on(
    servers: ServerThread, tmp_path: Path
) -> None:
    """Concurrency, timeouts and retries may change on resume: that is why one resumes."""
    source, out = _list_and_output(servers, tmp_path, 3)
    assert run_cli("-i", str(source), "-o", str(out), "--resume", "-c", "5").returncode == 0
    again = run_cli("-i", str(source), "-o", str(out), "--resume", "-c", "1", "-t", "3")
    assert again.returncode == 0, again.stderr
    assert len(out.read_bytes().splitlines()) == 3


def test_a_fresh_run_writes_its_own_fingerprint(servers: ServerThread, tmp_path: Path) -> None:
    """Every -o FILE run can be resumed safely: its fingerprint replaces an old one."""
    out = tmp_path / "out.jsonl"
    assert run_cli(f"{servers.base}/ok", "-o", str(out)).returncode == 0
    first = (tmp_path / "out.jsonl.resume.json").read_bytes()
    assert run_cli(f"{servers.base}/ok?other", "-o", str(out)).returncode == 0
    assert (tmp_path / "out.jsonl.resume.json").read_bytes() != first
    resumed = run_cli(f"{servers.base}/ok?other", "-o", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    refused = run_cli(f"{servers.base}/ok", "-o", str(out), "--resume", status=2)
    assert refused.returncode == 2


def test_records_without_a_fingerprint_are_checked_url_by_url(
    servers: ServerThread, tmp_path: Path
) -> None:
    """Records copied without their side file: another input's URLs are refused, FILE
    untouched; the same input's records are trusted and the rest fetched."""
    source, out = _list_and_output(servers, tmp_path, 5)
    other = tmp_path / "other.txt"
    other.write_text("".join(f"{servers.base}/ok?other={i}\n" for i in range(3)))
    assert run_cli("-i", str(other), "-o", str(out)).returncode == 0
    (tmp_path / "out.jsonl.resume.json").unlink()
    before = out.read_bytes()
    refused = run_cli("-i", str(source), "-o", str(out), "--resume", status=2)
    assert refused.returncode == 2
    assert "was not written from this input (record 0 is" in refused.stderr
    assert out.read_bytes() == before
    assert not (tmp_path / "out.jsonl.resume.json").exists()

    assert run_cli("-i", str(source), "-o", str(out)).returncode == 0
    out.write_bytes(b"".join(out.read_bytes().splitlines(keepends=True)[:2]))
    (tmp_path / "out.jsonl.resume.json").unlink()
    resumed = run_cli("-i", str(source), "-o", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    indices = sorted(orjson.loads(line)["index"] for line in out.read_bytes().splitlines())
    assert indices == [0, 1, 2, 3, 4]


def test_cancelled_records_are_fetched_again_on_resume(
    servers: ServerThread, tmp_path: Path
) -> None:
    """Ctrl-C without --resume leaves cancelled records and prints the command that
    finishes them; that command fetches them again, and readers keep the newest."""
    source = tmp_path / "urls.txt"
    source.write_text(f"{servers.base}/ok\n" + f"{servers.base}/slow?s=2\n" * 2)
    out = tmp_path / "out d.jsonl"
    proc = subprocess.Popen(
        [AFETCH, "-i", str(source), "-o", str(out), "-t", "5"],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (out.exists() and out.read_bytes()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130
    said = stderr.decode()
    assert "interrupted: 2 requests unfinished (cancelled records); to finish them: " in said
    assert f"afetch -i {source} -o '{out}' -t 5 --resume" in said
    kinds = [
        (orjson.loads(line)["error"] or {}).get("type") for line in out.read_bytes().splitlines()
    ]
    assert kinds.count("cancelled") == 2

    resumed = run_cli("-i", str(source), "-o", str(out), "-t", "5", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == 5  # 1 ok + 2 cancelled, then the 2 fetched again
    assert [r["index"] for r in records[3:]] == [1, 2] or [r["index"] for r in records[3:]] == [
        2,
        1,
    ]
    report = run_cli("--report", str(out), "--summary")
    assert report.returncode == 0, report.stderr  # the newest record of each index wins
    assert "2 earlier records of the same checks replaced" in report.stderr


def test_a_large_input_is_fingerprinted_by_its_ends(tmp_path: Path) -> None:
    """Past 64 MiB only the first and last 16 MiB are read: a change there is seen."""
    from afetch.config import Config, RunControl
    from afetch.sinks.fingerprint import fingerprint

    big = tmp_path / "big.txt"
    with open(big, "wb") as handle:
        handle.truncate(70 << 20)
    before = fingerprint(Config(), RunControl(), [], [str(big)])
    with open(big, "r+b") as handle:
        handle.write(b"http://a.test/\n")
    after = fingerprint(Config(), RunControl(), [], [str(big)])
    assert before["inputs"] != after["inputs"]
    assert fingerprint(Config(), RunControl(), [], ["-"])["inputs"] == ["stdin"]
