"""Raw lines → FetchSpecs, or invalid_input FetchResults; numbers them (the index).

Blank lines and comments take no index; ``--dedupe`` duplicates take none
either. ``read_requests`` joins the positional URLs and the inputs in order.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from typing import Any

import orjson
from yarl import URL

from afetch.config import Config, parse_duration
from afetch.expect import Expectation
from afetch.http.options import DEFAULT_PORTS
from afetch.http.request import (
    check_header,
    check_host,
    check_method,
    check_port,
    raw_query_of,
    with_raw_query,
)
from afetch.inputs.read import (
    MAX_LINE,
    InputError,
    OverlongLine,
    RawLine,
    StdinOpener,
    read_raw_lines,
)
from afetch.inputs.seen import Digests
from afetch.inputs.select import Selection
from afetch.models import NO_ID, FetchResult, FetchSpec, invalid_input, skipped

_JSON_KEYS = frozenset({"url", "method", "headers", "body", "json", "id", "timeout", "expect"})
_SPACE = re.compile(r"\s")
# URLs that yarl would keep exactly as written: lower-case host names or IPv4,
# no userinfo, no default or zero-led port, path and query of characters that
# need no quoting, no "%" (re-quoted), no fragment. Most lists are all such
# URLs; they skip yarl's parse-and-quote (about 4 µs a line).
_PLAIN_URL = re.compile(
    r"(https?)://([a-z0-9][a-z0-9.\-]*)(?::([1-9][0-9]{0,4}))?"
    r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*)(?:\?([A-Za-z0-9\-._~!$&'()*+,;=:@/?]+))?"
)
_AUTHORITY_END = re.compile(r"[/?#]")


class RequestParser:
    """Turns raw lines into specs or invalid_input results, numbering them."""

    def __init__(self, config: Config, *, dedupe: bool = False) -> None:
        self._config = config
        # Records show URLs masked (afetch.redact); --dedupe still compares them whole.
        self._mask = config.redaction.url if config.redaction.enabled else None
        self._mask_text = config.redaction.text
        self._filtered = bool(config.include or config.exclude)  # --include / --exclude
        self.next_index = 0
        # --dedupe keeps 64-bit digests of "METHOD URL", not the strings: about
        # 11 bytes per distinct request, and a collision chance near 1e-7 at 10⁶.
        self._seen: Digests | None = Digests() if dedupe else None
        self.duplicates = 0

    def _is_duplicate(self, method: str, url: str) -> bool:
        if self._seen is None:
            return False
        import hashlib  # here, not at the top: most runs never need it (start-up)

        digest = hashlib.blake2b(f"{method} {url}".encode(), digest_size=8).digest()
        if self._seen.add(int.from_bytes(digest, "little")):
            return False
        self.duplicates += 1
        return True

    def parse(self, raw: RawLine) -> FetchSpec | FetchResult | None:
        """None for a skipped line (blank or comment); it takes no index."""
        if isinstance(raw, OverlongLine):
            text = raw.preview.decode("utf-8", "replace")
            return self._invalid(text + "…", f"line is longer than {MAX_LINE // 1024} KiB")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = raw.decode("utf-8", "backslashreplace").strip()
            return self._invalid(shown, f"line is not valid UTF-8 (byte {exc.start})")
        text = text.strip().lstrip("\ufeff").strip()
        if not text or text.startswith("#"):
            return None
        if text.startswith("{"):
            return self._parse_json(text)
        return self._parse_url(text, (True, text))

    def parse_argument(self, text: str) -> FetchSpec | FetchResult | None:
        """A positional URL: never JSON; skipped only as a --dedupe duplicate."""
        text = text.strip()
        if not text:
            return self._invalid(text, "empty URL")
        return self._parse_url(text, (False, text))

    def _selected(self, spec: FetchSpec, url: str) -> FetchSpec | FetchResult:
        """--include / --exclude: a URL not selected is a ``skipped`` record, never fetched."""
        config = self._config
        if config.include and not any(p.search(url) for p in config.include):
            return skipped(spec, "not attempted: matched no --include pattern")
        for pattern in config.exclude:
            if pattern.search(url):
                shown = self._mask_text(pattern.pattern)
                return skipped(spec, f"not attempted: excluded by --exclude {shown!r}")
        return spec

    def _take_index(self) -> int:
        index = self.next_index
        self.next_index += 1
        return index

    def _invalid(self, text: str, message: str, id: Any = NO_ID) -> FetchResult:
        text, message = self._mask_text(text), self._mask_text(message)
        return invalid_input(self._take_index(), text, self._config.method, message, id)

    def _parse_url(self, text: str, source: tuple[bool, str]) -> FetchSpec | FetchResult | None:
        try:
            target, url = parse_url(text, self._config.default_scheme)
        except ValueError as exc:
            return self._invalid(text, str(exc))
        method = self._config.method
        if self._is_duplicate(method, url):
            return None
        shown = url if self._mask is None else self._mask(url)
        spec = FetchSpec(self._take_index(), shown, target, method, source=source)
        return self._selected(spec, url) if self._filtered else spec

    def parse_json(self, text: str) -> FetchSpec | FetchResult | None:
        """A JSON request object (a line, or a mapping the library was given)."""
        return self._parse_json(text)

    def _parse_json(self, text: str) -> FetchSpec | FetchResult | None:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return self._invalid(text, f"bad JSON: {exc}")
        if not isinstance(obj, dict):
            return self._invalid(text, "a JSON request must be an object")
        id_ = obj.get("id", NO_ID)
        url_text = obj.get("url")
        shown = url_text if isinstance(url_text, str) else text
        try:
            fields = _json_fields(obj, self._config)
        except ValueError as exc:
            method = obj.get("method") if isinstance(obj.get("method"), str) else None
            return invalid_input(
                self._take_index(),
                self._mask_text(shown),
                method or self._config.method,
                self._mask_text(str(exc)),
                id_,
            )
        target, url, method, headers, body, timeout, expectation = fields
        if self._is_duplicate(method, url):
            return None
        spec = FetchSpec(
            index=self._take_index(),
            url=url if self._mask is None else self._mask(url),
            source=(True, text),
            target=target,
            method=method,
            headers=headers,
            body=body,
            id=id_,
            timeout=timeout,
            expect=expectation,
        )
        return self._selected(spec, url) if self._filtered else spec


def parse_url(text: str, default_scheme: str) -> tuple[URL, str]:
    """A fetchable http(s) URL from user text and its normal form, or ValueError saying why not."""
    if (plain := _plain_url(text)) is not None:
        return plain, text  # str() of that URL would be text, but costs 2 µs
    url = make_url(text, default_scheme)
    return url, str(url)


def make_url(text: str, default_scheme: str) -> URL:
    """A fetchable http(s) URL from user text, or ValueError saying why not."""
    if _SPACE.search(text):
        raise ValueError("URL contains white space")
    if "://" not in text:
        text = f"{default_scheme}://{text}"
    text = _with_root_path(text)
    try:
        url = URL(text)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"bad URL: {exc}") from exc
    if url.scheme not in ("http", "https"):
        raise ValueError(f"unsupported scheme {url.scheme!r} (only http and https)")
    if not url.host:
        raise ValueError("URL has no host")
    try:
        url.port  # noqa: B018 - yarl validates the port lazily
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from exc
    check_host(url.raw_host or "")
    check_port(url.explicit_port)
    url = url.with_fragment(None) if url.raw_fragment else url
    return with_raw_query(url, raw_query_of(text))


def _plain_url(text: str) -> URL | None:
    """The URL built from its parts when ``URL(text)`` would change nothing, else None.

    Then ``str()`` of it is ``text``; building from the regex's parts skips
    yarl's own splitting too.
    """
    match = _PLAIN_URL.fullmatch(text)
    if match is None or "/." in text or ".." in text:  # dot segments, empty labels
        return None
    scheme, host, port_text, path, query = match.groups()
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535 or port == DEFAULT_PORTS[scheme]:  # an error, or yarl drops it
            return None
    return URL.build(
        scheme=scheme, host=host, port=port, path=path, query_string=query or "", encoded=True
    )


def _with_root_path(text: str) -> str:
    """``https://a.com?q`` → ``https://a.com/?q``: the path of a bare host is ``/``, as in curl."""
    start = text.index("://") + 3
    end = _AUTHORITY_END.search(text, start)
    if end is None:
        return text + "/"
    if end.group() != "/":
        return f"{text[: end.start()]}/{text[end.start() :]}"
    return text


def _json_fields(
    obj: dict[str, Any], config: Config
) -> tuple[
    URL, str, str, tuple[tuple[str, str], ...], bytes | None, float | None, Expectation | None
]:
    unknown = sorted(set(obj) - _JSON_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(unknown)}")
    url = obj.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ValueError("'url' must be a non-empty string")
    target, url = parse_url(url.strip(), config.default_scheme)
    method = obj.get("method", config.method)
    if not isinstance(method, str):
        raise ValueError("'method' must be an HTTP method name")
    check_method(method)
    headers = _json_headers(obj.get("headers", {}))
    body = _json_body(obj)
    if "json" in obj:
        headers = _with_default(headers, "Content-Type", "application/json")
    expectation = None
    if "expect" in obj:
        if not isinstance(obj["expect"], dict):
            raise ValueError("'expect' must be an object")
        expectation = config.expect.override(obj["expect"])
    timeout = _json_timeout(obj.get("timeout"))
    return target, url, method.upper(), headers, body, timeout, expectation


def _json_headers(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ValueError("'headers' must be an object of strings")
    headers = []
    for name, text in value.items():
        if not isinstance(text, str):
            raise ValueError(f"header {name!r} must have a string value")
        check_header(name, text)
        headers.append((name, text))
    return tuple(headers)


def _json_body(obj: dict[str, Any]) -> bytes | None:
    if "body" in obj and "json" in obj:
        raise ValueError("give 'body' or 'json', not both")
    if "json" in obj:
        return orjson.dumps(obj["json"])
    body = obj.get("body")
    if body is None:
        return None
    if not isinstance(body, str):
        raise ValueError("'body' must be a string (use 'json' for structured data)")
    return body.encode("utf-8")


def _json_timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("'timeout' must be a number of seconds or a duration")
    seconds = parse_duration(value) if isinstance(value, str) else value
    if not isinstance(seconds, int | float) or seconds <= 0:
        raise ValueError("'timeout' must be positive")
    return float(seconds)


def _with_default(
    headers: tuple[tuple[str, str], ...], name: str, value: str
) -> tuple[tuple[str, str], ...]:
    if any(key.lower() == name.lower() for key, _ in headers):
        return headers
    return (*headers, (name, value))


class ParsedRequests:
    """Requests already parsed and numbered: ``afetch.stream`` takes them as they are."""

    __slots__ = ("items",)  # a plain class: a dataclass costs 0.5 ms of start-up

    def __init__(self, items: AsyncGenerator[FetchSpec | FetchResult, None]) -> None:
        self.items = items

    def __aiter__(self) -> AsyncGenerator[FetchSpec | FetchResult, None]:
        return self.items


def read_requests(
    urls: Iterable[str],
    paths: Sequence[str],
    parser: RequestParser,
    *,
    select: Selection | None = None,
    on_error: Callable[[InputError], None] | None = None,
    stdin: StdinOpener | None = None,
) -> ParsedRequests:
    """The run's requests in index order: positional URLs, then each input.

    ``select`` keeps only some indices (``--shard``, ``--resume``); the others
    still take their index, so every shard and every resumed run agree on it.
    """
    return ParsedRequests(_requests(urls, paths, parser, select, on_error, stdin))


async def _requests(
    urls: Iterable[str],
    paths: Sequence[str],
    parser: RequestParser,
    select: Selection | None,
    on_error: Callable[[InputError], None] | None,
    stdin: StdinOpener | None,
) -> AsyncGenerator[FetchSpec | FetchResult, None]:
    for url in urls:
        item = parser.parse_argument(url)
        if item is not None and (select is None or select(item)):
            yield item
    async for batch in read_raw_lines(paths, on_error, stdin):
        for raw in batch:
            item = parser.parse(raw)
            if item is not None and (select is None or select(item)):
                yield item
