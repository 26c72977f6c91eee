"""--output-dir: bodies saved as they stream, under safe names, never outside the directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from yarl import URL

import afetch
from afetch.sinks.bodies import file_name
from tests.conftest import records_of, run_cli
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


@pytest.mark.parametrize(
    "url",
    [
        "http://h.example/a/b/report.pdf",
        "http://h.example/../../etc/passwd",
        "http://h.example/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "http://h.example/dir/",
        "http://h.example",
        "http://h.example/" + "x" * 500,
        "http://h.example/.hidden",
        "http://h.example/a%00b%0Ac",
    ],
)
def test_file_names_are_plain_and_start_with_the_index(url: str) -> None:
    """Only [A-Za-z0-9._-], no leading dot, bounded length, unique by index."""
    name = file_name(7, URL(url))
    assert name.startswith("00000007-")
    assert "/" not in name
    assert "\0" not in name
    assert not name.startswith(".")
    assert len(name) < 100
    assert all(c.isalnum() or c in "._-" for c in name)


async def test_bodies_are_saved_whole_and_recorded(servers: ServerThread, tmp_path: Path) -> None:
    """Each body lands in its own file inside DIR; saved_to says where; no .part remains."""
    urls = [f"{servers.base}/bytes/70000", f"{servers.base}/bytes/70000", f"{servers.base}/ok"]
    records = records_of(await afetch.fetch_all(urls, output_dir=tmp_path, retries=0))
    paths = [Path(record["saved_to"]) for record in records]
    assert len(set(paths)) == 3
    for path in paths:
        assert path.parent == tmp_path
    assert paths[0].read_bytes() == b"x" * 70000
    assert paths[2].read_bytes() == b"ok"
    assert not list(tmp_path.glob("*.part"))


async def test_a_truncated_body_saves_the_first_max_body_bytes(
    servers: ServerThread, tmp_path: Path
) -> None:
    """With --max-body the file holds exactly the bytes counted in size."""
    (record,) = records_of(
        await afetch.fetch_all([f"{servers.base}/bytes/300000"], output_dir=tmp_path, max_body=1000)
    )
    assert record["truncated"] is True
    assert Path(record["saved_to"]).stat().st_size == 1000


async def test_a_failed_body_leaves_no_file(servers: ServerThread, tmp_path: Path) -> None:
    """A body cut short (protocol error) is not saved, not even as .part."""
    (record,) = records_of(
        await afetch.fetch_all([servers.raw("short")], output_dir=tmp_path, retries=0)
    )
    assert record["error"]["type"] == "protocol"
    assert "saved_to" not in record
    assert list(tmp_path.iterdir()) == []


def test_cli_output_dir_is_created(servers: ServerThread, tmp_path: Path) -> None:
    """afetch --output-dir DIR creates DIR and saves there."""
    target = tmp_path / "new" / "bodies"
    run = run_cli(f"{servers.base}/ok", "--output-dir", str(target))
    (record,) = run.records
    assert Path(record["saved_to"]).read_bytes() == b"ok"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_body_file_that_cannot_be_written_ends_the_run_with_one_error(
    servers: ServerThread, tmp_path: Path, workers: str
) -> None:
    """A full disk is the run's fault, not the URLs': one message, exit 1, no `internal` records."""
    urls = [f"{servers.base}/bytes/{300_000 + i}?i={i}" for i in range(40)]
    (tmp_path / f"{file_name(5, URL(urls[5]))}.part").symlink_to("/dev/full")  # ENOSPC
    run = run_cli(*urls, "--output-dir", str(tmp_path), "-c", "4", "--workers", workers, status=1)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, run.stderr
    assert "--output-dir" in errors[0]
    assert "No space left on device" in errors[0]
    kinds = {r["error"]["type"] for r in run.records if r["error"]}
    assert kinds <= {"cancelled"}
    # The directory and the records agree: no .part left, a saved body for every ok
    # record, none for a cancelled one.
    assert not list(tmp_path.glob("*.part")), list(tmp_path.iterdir())
    saved = {path.name for path in tmp_path.iterdir()}
    for record in run.records:
        name = file_name(record["index"], URL(record["url"]))
        if record["ok"]:
            assert record["saved_to"].endswith(name)
            assert name in saved
        else:
            assert name not in saved, record


async def test_the_library_raises_an_output_failure(servers: ServerThread, tmp_path: Path) -> None:
    """The library raises OutputFailure when --output-dir cannot be written."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_bytes(b"")
    with pytest.raises(afetch.errors.OutputFailure, match="--output-dir"):
        await afetch.fetch_all([f"{servers.base}/ok"], output_dir=not_a_dir)
