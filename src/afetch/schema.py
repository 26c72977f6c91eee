"""The JSON Schema (draft 2020-12) of one output record, printed by ``--schema``."""

from __future__ import annotations

from typing import Any

from afetch.errors import ErrorKind

_MS = {"type": "number", "minimum": 0}
_NULLABLE_MS = {"type": ["number", "null"], "minimum": 0}

RECORD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://github.com/afetch/afetch/record.schema.json",
    "title": "afetch record",
    "description": "One line of afetch output: the outcome of one request.",
    "type": "object",
    "required": ["index", "url", "method", "ok", "status", "error", "attempts", "elapsed_ms"],
    "additionalProperties": False,
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "url": {"type": "string"},
        "method": {"type": "string"},
        "ok": {"type": "boolean"},
        "status": {"type": ["integer", "null"], "minimum": 100, "maximum": 999},
        "error": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["type", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"enum": [kind.value for kind in ErrorKind]},
                        "message": {"type": "string"},
                        "phase": {
                            "enum": ["queue", "dns", "connect", "tls", "send", "ttfb", "body"]
                        },
                    },
                },
            ]
        },
        "attempts": {"type": "integer", "minimum": 0},
        "elapsed_ms": _MS,
        "id": {"description": "echoed unchanged from the input object"},
        "final_url": {"type": "string"},
        "redirects": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["status", "url"],
                "additionalProperties": False,
                "properties": {
                    "status": {"type": "integer"},
                    "url": {
                        "type": "string",
                        "description": "the URL that answered with a redirect",
                    },
                },
            },
        },
        "reason": {"type": ["string", "null"]},
        "content_type": {"type": ["string", "null"]},
        "size": {"type": ["integer", "null"], "minimum": 0},
        "truncated": {"const": True},
        "headers": {
            "type": "object",
            "description": "response headers, names lower-cased; a repeated name is a list",
            "additionalProperties": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
        },
        "body": {"type": "string"},
        "body_encoding": {"const": "base64"},
        "failed": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "description": "the expectations the response did not meet",
        },
        "saved_to": {"type": "string", "description": "path of the saved body"},
        "tls": {
            "type": "object",
            "description": "--tls-info: what the handshake of the answering connection saw",
            "required": [
                "version",
                "cipher",
                "subject",
                "issuer",
                "not_before",
                "not_after",
                "days_left",
                "san",
            ],
            "properties": {
                "version": {"type": "string"},
                "cipher": {"type": "string"},
                "subject": {"type": ["string", "null"]},
                "issuer": {"type": ["string", "null"]},
                "not_before": {"type": ["string", "null"], "format": "date-time"},
                "not_after": {"type": ["string", "null"], "format": "date-time"},
                "days_left": {"type": ["integer", "null"]},
                "san": {"type": ["array", "null"], "items": {"type": "string"}},
            },
            "additionalProperties": False,
        },
        "flaky": {
            "const": True,
            "description": "failed, then passed when --recheck tried it again",
        },
        "remote_ip": {
            "type": "string",
            "description": "address of the peer that answered (the proxy's when proxied)",
        },
        "warn": {
            "const": True,
            "description": "--warn-on covers every reason this record is not ok (ok stays false)",
        },
        "repro": {
            "type": "string",
            "description": "--repro, failed records: a curl command sending the same request",
        },
        "blocked_by": {
            "type": "string",
            "description": "error.type is blocked: the bot-wall vendor the evidence names",
        },
        "http_version": {"enum": ["1.0", "1.1", "2"]},
        "reused": {
            "type": "boolean",
            "description": "the answer came on a kept-alive connection",
        },
        "downgraded": {
            "const": True,
            "description": "--http2: the origin asked for HTTP/1.1 and got it for the run",
        },
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "timing": {
            "type": "object",
            "required": ["dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms"],
            "additionalProperties": False,
            "properties": {
                "dns_ms": _NULLABLE_MS,
                "connect_ms": _NULLABLE_MS,
                "tls_ms": _NULLABLE_MS,
                "ttfb_ms": _NULLABLE_MS,
                "total_ms": _MS,
            },
        },
    },
    "allOf": [
        {
            "if": {"properties": {"ok": {"const": True}}},
            "then": {"properties": {"error": {"type": "null"}}},
        },
        {
            "if": {"properties": {"ok": {"const": False}}},
            "then": {"properties": {"error": {"type": "object"}}},
        },
    ],
}
