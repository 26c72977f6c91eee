"""The README's recipes, run as written: sharding with GNU parallel or xargs, merging, jq."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.conftest import AFETCH, run_cli
from tests.server import ServerThread

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def shell(command: str, cwd: Path) -> str:
    """Run a recipe in sh with the installed afetch first on PATH."""
    env = {**os.environ, "PATH": f"{Path(AFETCH).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def url_list(servers: ServerThread, directory: Path, count: int = 40) -> None:
    body = "".join(
        f"{servers.base}/status/{404 if i % 10 == 3 else 200}?i={i}\n" for i in range(count)
    )
    (directory / "urls.txt").write_text("# a comment line takes no index\n" + body)


def check_merged(directory: Path, count: int) -> None:
    records = [orjson.loads(line) for line in (directory / "all.jsonl").read_bytes().splitlines()]
    assert [record["index"] for record in records] == list(range(count))


@pytest.mark.skipif(shutil.which("parallel") is None, reason="GNU parallel not installed")
def test_gnu_parallel_one_job_per_shard_then_merge(servers: ServerThread, tmp_path: Path) -> None:
    """parallel -j 4 afetch --shard {}/4 ..., then sort merges into input order."""
    url_list(servers, tmp_path)
    shell(
        "parallel -j 4 afetch -i urls.txt --shard {}/4 -o out.{}.jsonl --exit-zero ::: 1 2 3 4",
        tmp_path,
    )
    shell("sort -t: -k2,2n out.*.jsonl > all.jsonl", tmp_path)
    check_merged(tmp_path, 40)


def test_xargs_one_job_per_shard_then_merge(servers: ServerThread, tmp_path: Path) -> None:
    """The same with xargs -P, for machines without GNU parallel."""
    url_list(servers, tmp_path)
    shell(
        "printf '%s\\n' 1 2 3 4 | xargs -P 4 -I{} "
        "afetch -i urls.txt --shard {}/4 -o out.{}.jsonl --exit-zero",
        tmp_path,
    )
    shell("sort -t: -k2,2n out.*.jsonl > all.jsonl", tmp_path)
    check_merged(tmp_path, 40)


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq not installed")
def test_jq_recipes(servers: ServerThread, tmp_path: Path) -> None:
    """Failures only, slowest ten, status histogram, and joining back by index."""
    url_list(servers, tmp_path, 20)
    shell("afetch -i urls.txt --exit-zero > out.jsonl", tmp_path)
    failures = shell("jq -c 'select(.ok | not)' out.jsonl", tmp_path).splitlines()
    assert len(failures) == 2
    slowest = shell(
        "jq -s 'sort_by(-.elapsed_ms) | .[:10] | .[] | {url, elapsed_ms}' out.jsonl", tmp_path
    )
    assert slowest.count('"url"') == 10
    histogram = json.loads(
        shell(
            "jq -s 'group_by(.status) | map({status: .[0].status, n: length})' out.jsonl", tmp_path
        )
    )
    assert histogram == [{"status": 200, "n": 18}, {"status": 404, "n": 2}]
    joined = shell(
        "grep -Ev '^[[:space:]]*(#|$)' urls.txt > requests.txt && "
        "jq -nr -R --slurpfile recs out.jsonl "
        "'($recs | INDEX(.index|tostring)) as $by "
        '| [inputs] | to_entries[] | "\\($by[.key|tostring].status)\\t\\(.value)"\' requests.txt',
        tmp_path,
    ).splitlines()
    assert len(joined) == 20
    assert joined[3] == f"404\t{servers.base}/status/404?i=3"


def test_example_lists_parse_cleanly() -> None:
    """Every line of examples/ is a valid request (the hosts themselves are not reachable here)."""
    for name in ("urls.txt", "health.jsonl"):
        run = run_cli(
            "-i",
            str(EXAMPLES / name),
            "--retries",
            "0",
            "-t",
            "2",
            "--proxy",
            "http://127.0.0.1:9",
            status=1,
        )
        kinds = {(record["error"] or {}).get("type") for record in run.records}
        assert "invalid_input" not in kinds, name
        assert run.records
