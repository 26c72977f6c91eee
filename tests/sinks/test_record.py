"""The record is described once: FetchResult, to_record, from_line and the JSON Schema agree."""

from __future__ import annotations

import dataclasses

import jsonschema

from afetch.errors import ErrorInfo, ErrorKind
from afetch.models import FetchResult
from afetch.schema import RECORD_SCHEMA
from afetch.sinks.records import dumps

#: FetchResult fields that are not record fields of their own.
_INTERNAL = {
    "charset": "how body was decoded: decides body vs body_encoding",
    "line": "a worker's record line, written as it came",
}
#: Record fields that come from a field of another name, or only sometimes.
_DERIVED = {"body_encoding": "body"}


_TLS = {
    "version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256", "subject": "a.test",
    "issuer": "CA", "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z",
    "days_left": 30, "san": ["a.test"],
}  # fmt: skip


def _every_field_set() -> FetchResult:
    """A result with every field away from its default: a field to_record forgets shows."""
    return FetchResult(
        index=3,
        url="http://a.test/x",
        method="POST",
        ok=False,
        status=200,
        error=ErrorInfo(ErrorKind.TIMEOUT, "no complete response within 1s", "body"),
        attempts=2,
        elapsed_ms=1.5,
        id="check",
        final_url="http://a.test/y",
        redirects=((302, "http://a.test/y"),),
        reason="OK",
        content_type="text/plain",
        size=2,
        truncated=True,
        timing={"dns_ms": None, "connect_ms": 1.0, "tls_ms": None, "ttfb_ms": 1.2, "total_ms": 2},
        headers={"a": "b"},
        body=b"\xff\xfe",
        charset=None,
        sha256="ab" * 32,
        saved_to="/tmp/f",
        failed=("status 200 not in [204]",),
        remote_ip="127.0.0.1",
        http_version="1.1",
        reused=False,
        downgraded=True,
        tls=_TLS,
        flaky=True,
        blocked_by="cloudflare",
        repro="curl http://a.test/x",
        warn=True,
    )


def test_every_field_reaches_the_record_the_schema_and_back() -> None:
    """A field missing from to_record, from_line or the schema fails this test."""
    result = _every_field_set()
    for field in dataclasses.fields(FetchResult):  # really away from its default
        assert getattr(result, field.name) != field.default or field.name in _INTERNAL, field
    record = result.to_record()
    fields = {f.name for f in dataclasses.fields(FetchResult)} - set(_INTERNAL)
    assert fields <= set(record), fields - set(record)  # each field has its record key
    assert set(record) - fields <= set(_DERIVED)
    assert set(record) == set(RECORD_SCHEMA["properties"])  # and the schema describes it
    jsonschema.Draft202012Validator(RECORD_SCHEMA).validate(record)
    line = dumps(record)
    assert FetchResult.from_line(line) == dataclasses.replace(result, line=line)


def test_the_schema_requires_exactly_the_fields_always_present() -> None:
    """SPEC §2's always-present fields are the schema's required ones."""
    always = {"index", "url", "method", "ok", "status", "error", "attempts", "elapsed_ms"}
    assert set(RECORD_SCHEMA["required"]) == always
