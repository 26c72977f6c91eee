"""--repro: a failed record carries a curl command that sends the same request."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def test_the_repro_command_sends_the_same_request(servers: ServerThread, tmp_path: Path) -> None:
    """Method, headers (secrets masked), body, --resolve for the address used, the time
    limit; run by curl it gets the same answer. An ok record has none; the Markdown
    report shows it."""
    port = servers.ports["app"]
    failing = f"http://named.test:{port}/status/404?token=SECRET123"
    run = run_cli(
        failing, f"{servers.base}/status/200", "-X", "POST", "-d", "a=1",
        "-H", "Authorization: Bearer TOPSECRET", "-H", "X-A: b", "--repro", "--retries", "0",
        "--markdown", str(tmp_path / "report.md"),
        status=1,
    )  # fmt: skip
    by_url = {r["url"].split("?")[0]: r for r in run.records}
    repro = by_url[f"http://named.test:{port}/status/404"]["repro"]
    assert repro.startswith("curl --http1.1")
    for part in ("-X POST", "--data-binary a=1", "'Authorization: ***'", "'X-A: b'"):
        assert part in repro, repro
    assert f"--resolve named.test:{port}:127.0.0.1" in repro
    assert "TOPSECRET" not in repro
    assert "SECRET123" not in repro
    assert "repro" not in by_url[f"{servers.base}/status/200"]
    report = (tmp_path / "report.md").read_text()
    assert "Reproduce with curl" in report
    assert repro in report
    curl = shutil.which("curl")
    assert curl is not None
    answer = subprocess.run(repro, shell=True, capture_output=True, text=True, timeout=30)
    assert answer.stdout.strip() == "404", answer


def test_the_repro_command_names_the_cookie_file_and_masks_the_digest_password(
    servers: ServerThread, tmp_path: Path
) -> None:
    """-b FILE and --digest are sent from outside the headers, so the command names them."""
    jar = tmp_path / "cookies.txt"
    jar.write_text("# Netscape HTTP Cookie File\n")
    (record,) = run_cli(
        f"{servers.base}/status/500", "--repro", "--retries", "0", "-b", str(jar),
        "--digest", "-u", "ann:PASSWORDX", status=1,
    ).records  # fmt: skip
    assert f"-b {jar}" in record["repro"]
    assert "--digest -u 'ann:***'" in record["repro"]
    assert "PASSWORDX" not in record["repro"]
