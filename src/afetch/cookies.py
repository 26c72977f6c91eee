"""A cookie jar for runs that ask for one: ``-b FILE`` reads it, ``--cookie-jar FILE`` writes it.

Off unless one of those is given: a list fetcher's requests are independent,
and with a jar they no longer are — under concurrency a response's cookie
reaches only the requests that start after it, so results depend on timing.
The jar follows the standard rules (``http.cookiejar``, RFC 6265 domains and
paths, Secure, expiry): a cookie goes to its own site on later requests and
redirects, never to another site. Files are Netscape format, as curl's.
"""

from __future__ import annotations

import http.cookiejar
import urllib.request
from collections.abc import Iterable

from yarl import URL


class _Answer:
    """What ``extract_cookies`` reads of a response: its Set-Cookie headers."""

    def __init__(self, headers: Iterable[tuple[str, str]]) -> None:
        self._set = [
            value for name, value in headers if name.lower() in ("set-cookie", "set-cookie2")
        ]

    def info(self) -> _Answer:
        return self

    def get_all(self, name: str, default: list[str]) -> list[str]:
        return self._set if name.lower() == "set-cookie" else default


class CookieJar:
    """The run's cookies: sent by site, learnt from every response."""

    def __init__(self, read_from: str | None = None, write_to: str | None = None) -> None:
        self._jar = http.cookiejar.MozillaCookieJar()
        self._write_to = write_to
        if read_from is not None:
            try:
                self._jar.load(read_from, ignore_discard=True, ignore_expires=True)
            except (OSError, http.cookiejar.LoadError) as exc:
                raise ValueError(f"-b {read_from}: not a cookie file ({exc})") from exc
            self._settle_expiry()

    def _settle_expiry(self) -> None:
        """An expiry of 0 is a session cookie in curl's files; past expiries are dropped."""
        for cookie in list(self._jar):
            if cookie.expires == 0:
                cookie.expires, cookie.discard = None, True
            elif cookie.is_expired():
                self._jar.clear(cookie.domain, cookie.path, cookie.name)

    def header_for(self, url: URL) -> str | None:
        """The Cookie header this URL gets from the jar, if any."""
        request = urllib.request.Request(str(url))
        self._jar.add_cookie_header(request)
        return request.get_header("Cookie")

    def learn(self, url: URL, headers: Iterable[tuple[str, str]]) -> None:
        """Keep what a response's Set-Cookie headers set (the jar's rules decide)."""
        answer = _Answer(headers)
        if answer.get_all("set-cookie", []):
            self._jar.extract_cookies(answer, urllib.request.Request(str(url)))  # type: ignore[arg-type]

    def save(self) -> None:
        """Write the jar (``--cookie-jar``), session cookies included, as curl does."""
        if self._write_to is not None:
            self._jar.save(self._write_to, ignore_discard=True, ignore_expires=False)

    def __len__(self) -> int:
        return len(self._jar)
