"""Lines in: ``read`` (bytes → lines, on a thread, with back-pressure) and ``parse``
(lines → FetchSpecs or invalid_input results, numbered)."""

from afetch.inputs.parse import (
    ParsedRequests,
    RequestParser,
    make_url,
    parse_url,
    read_requests,
)
from afetch.inputs.read import MAX_LINE, InputError, LineSplitter, OverlongLine, read_lines

__all__ = [
    "MAX_LINE",
    "InputError",
    "LineSplitter",
    "OverlongLine",
    "ParsedRequests",
    "RequestParser",
    "make_url",
    "parse_url",
    "read_lines",
    "read_requests",
]
