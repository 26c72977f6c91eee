"""--repro: a failed record carries a curl command that sends the same request."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import run_cli
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def test_the_repro_command_sends_the_same_request(servers: ServerThread) -> None:
    """Method, headers (secrets masked), body, --resolve for the address used, the time
    limit; run by curl it gets the same answer. An ok record has none."""
    port = servers.ports["app"]
    failing = f"http://named.test:{port}/status/404?token=SECRET123"
    run = run_cli(
        failing, f"{servers.base}/status/200", "-X", "POST", "-d", "a=1",
        "-H", "Authorization: Bearer TOPSECRET", "-H", "X-A: b", "--repro", "--retries", "0",
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
    curl = shutil.which("curl")
    assert curl is not None
    answer = subprocess.run(repro, shell=True, capture_output=True, text=True, timeout=30)
    assert answer.stdout.strip() == "404", answer
