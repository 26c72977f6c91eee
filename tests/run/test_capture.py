"""--headers, --body and --hash: what a record can carry of the response."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

import afetch
from afetch.redact import NO_REDACTION
from tests.conftest import records_of, run_cli, transport_free
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


async def one(url: str, **options: Any) -> dict[str, Any]:
    results = await afetch.fetch_all([url], retries=0, **options)
    (record,) = records_of(results)
    return record


async def test_headers_are_lower_cased_and_repeats_become_lists(servers: ServerThread) -> None:
    """--headers: names lower-cased, a repeated name is a list in arrival order."""
    record = await one(f"{servers.base}/multi-header", capture_headers=True)
    assert record["headers"]["set-cookie"] == ["***", "***"]  # cookies are masked
    assert record["headers"]["x-mixed-case"] == "yes"
    plain = await one(f"{servers.base}/multi-header", capture_headers=True, redaction=NO_REDACTION)
    assert plain["headers"]["set-cookie"] == ["a=1", "b=2"]
    assert "headers" not in await one(f"{servers.base}/multi-header")


async def test_body_is_text_in_its_declared_charset(servers: ServerThread) -> None:
    """A latin-1 body declared as latin-1 comes back as text."""
    record = await one(f"{servers.base}/latin1", capture_body=True)
    assert record["body"] == "café"
    assert "body_encoding" not in record


async def test_a_body_that_does_not_decode_is_base64_and_lossless(servers: ServerThread) -> None:
    """Bytes that are not valid in the declared charset come back as base64, exactly."""
    record = await one(f"{servers.base}/latin1?charset=utf-8", capture_body=True)
    assert record["body_encoding"] == "base64"
    assert base64.b64decode(record["body"]) == "café".encode("iso-8859-1")


@transport_free
def test_an_unknown_charset_is_read_as_utf8_when_it_is() -> None:
    """A charset Python does not know (utf8mb4, none) falls back to UTF-8, as browsers do;
    bytes that are not UTF-8 either stay base64."""
    from afetch.models import body_fields

    assert body_fields("café ✓".encode(), "utf8mb4") == {"body": "café ✓"}
    assert body_fields(b"ok", "none") == {"body": "ok"}
    latin = body_fields("café".encode("iso-8859-1"), "utf8mb4")
    assert latin["body_encoding"] == "base64"
    assert base64.b64decode(latin["body"]) == "café".encode("iso-8859-1")


async def test_hash_covers_the_body_read_even_when_not_kept(servers: ServerThread) -> None:
    """--hash is the sha256 of the bytes read: the whole body, or the first --max-body bytes."""
    whole = await one(f"{servers.base}/bytes/5000", hash_body=True)
    assert whole["sha256"] == hashlib.sha256(b"x" * 5000).hexdigest()
    assert "body" not in whole
    capped = await one(
        f"{servers.base}/bytes/5000", hash_body=True, capture_body=True, max_body=1000
    )
    assert capped["truncated"] is True
    assert capped["body"] == "x" * 1000
    assert capped["sha256"] == hashlib.sha256(b"x" * 1000).hexdigest()


def test_cli_capture_flags_produce_schema_valid_records(servers: ServerThread) -> None:
    """afetch --headers --body --hash: every new field present and valid."""
    run = run_cli(f"{servers.base}/ok", "--headers", "--body", "--hash")
    (record,) = run.records
    assert record["body"] == "ok"
    assert record["headers"]["content-length"] == "2"
    assert record["sha256"] == hashlib.sha256(b"ok").hexdigest()
