"""Secrets never reach what a person or an artifact reads (redaction on by default)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from afetch.redact import Redaction, masked_argv
from tests.conftest import lines, run_cli
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")

SECRETS = ("s3cret", "SECRET123", "TOPSECRET", "COOKIEVAL", "LITERALX", "KEYVAL")


def _everything(out: Path, run_stdout: bytes, run_stderr: str) -> bytes:
    """Every byte afetch wrote: stdout, stderr and every file in the run's folder."""
    written = run_stdout + run_stderr.encode()
    for path in out.rglob("*"):
        if path.is_file():
            written += path.read_bytes()
    return written


@pytest.mark.parametrize("workers", ["1", "2"])
def test_no_output_carries_a_secret(servers: ServerThread, tmp_path: Path, workers: str) -> None:
    """URL passwords, secret query values, credential headers, cookies and --secret
    literals are masked in records, -v, the summary, JUnit, Markdown, the GitHub step
    summary and annotations, --report rebuilds, for a redirect and failures of each kind."""
    port = servers.ports["app"]
    base = f"http://ann:s3cret@127.0.0.1:{port}"
    urls = [
        f"{base}/ok?token=SECRET123&page=2",
        f"{base}/redirect-to?url=/status/404%3Fapi_key%3DKEYVAL&client_secret=SECRET123",
        "http://ann:s3cret@127.0.0.1:1/refused?access_token=SECRET123",
        f"{base}/slow?s=2&password=SECRET123",
        f"{base}/LITERALX/ok",
        "ftp://ann:s3cret@nope/?token=SECRET123",
        "http://ann:s3cret@nx-host.invalid/?token=SECRET123",  # dns
        servers.raw("garbage").replace("http://", "http://ann:s3cret@") + "?token=SECRET123",
        f"{base}/loop?token=SECRET123",  # too_many_redirects
        f"{base}/skipme?token=SECRET123",  # skipped (--exclude)
        "http://ann:s3cret@127.0.0.2:1/?token=SECRET123",  # policy (--deny)
        f"https://ann:s3cret@127.0.0.1:{port}/?token=SECRET123",  # tls
    ]
    out = tmp_path / "out"
    out.mkdir()
    summary = out / "step-summary.md"
    run = run_cli(
        "--retries", "0", "-t", "0.5", "--headers", "-v", "--summary", "--workers", workers,
        "-H", "X-Api: TOPSECRET", "--redact", "X-Api", "-b", "session=COOKIEVAL",
        "--secret", "LITERALX", "-o", str(out / "records.jsonl"), "--max-redirects", "2",
        "--exclude", "skipme", "--deny", "127.0.0.2", "--repro",
        "--junit", str(out / "junit.xml"), "--markdown", str(out / "report.md"), "--github",
        stdin=lines(*urls), env={"GITHUB_STEP_SUMMARY": str(summary)}, status=1,
    )  # fmt: skip
    records = [orjson.loads(line) for line in (out / "records.jsonl").read_bytes().splitlines()]
    assert len(records) == len(urls)
    by_index = {r["index"]: r for r in records}
    assert by_index[0]["url"] == f"http://ann:***@127.0.0.1:{port}/ok?token=***&page=2"
    assert by_index[0]["ok"]  # masking changes what is shown, not what is sent
    assert by_index[1]["final_url"].endswith("/status/404?api_key=***")
    assert "X-Api: ***" in by_index[1]["repro"]
    kinds = {(r["error"] or {}).get("type") for r in records}
    assert kinds >= {"connect", "timeout", "invalid_input", "dns", "protocol", "http"}
    assert kinds >= {"too_many_redirects", "skipped", "policy", "tls"}
    rebuilt = run_cli(
        "--report", str(out / "records.jsonl"), "--markdown", str(out / "rebuilt.md"),
        "--junit", str(out / "rebuilt.xml"), "--summary", status=1,
    )  # fmt: skip
    written = _everything(out, run.stdout, run.stderr) + rebuilt.stderr.encode()
    for secret in SECRETS:
        assert secret.encode() not in written, secret
    assert b"***" in written


def test_no_redact_writes_them_and_says_so(servers: ServerThread) -> None:
    """--no-redact (local debugging) writes URLs as they are and warns once."""
    url = f"http://ann:s3cret@127.0.0.1:{servers.ports['app']}/ok?token=SECRET123"
    run = run_cli(url, "--no-redact")
    (record,) = run.records
    assert record["url"] == url
    assert run.stderr.count("--no-redact") == 1


def test_show_config_masks_credentials() -> None:
    """--show-config masks -u's password, credential headers, cookies, proxy passwords."""
    run = run_cli(
        "--show-config", "-u", "ann:s3cret", "-H", "Authorization: Bearer TOPSECRET",
        "-b", "s=COOKIEVAL", "--proxy", "http://p:s3cret@127.0.0.1:3128", "--secret", "LITERALX",
    )  # fmt: skip
    for secret in SECRETS:
        assert secret not in run.stdout.decode(), secret


def test_the_masks_keep_urls_valid_and_are_stable() -> None:
    """A masked URL is still a URL, and masking twice changes nothing."""
    redaction = Redaction(names=frozenset({"x-sig"}), secrets=("LIT",))
    url = "https://u:pw@h.test/p/LIT?Token=a&x-sig=b&q=1&API_KEY=c"
    masked = redaction.url(url)
    assert masked == "https://u:***@h.test/p/***?Token=***&x-sig=***&q=1&API_KEY=***"
    assert redaction.url(masked) == masked
    assert masked_argv(["-u", "ann:pw", url], redaction)[1] == "ann:***"
    assert os.path.basename(masked)  # still splits like a URL
