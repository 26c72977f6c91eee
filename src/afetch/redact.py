"""Secrets masked in everything a person or an artifact reads: records, reports, messages.

On by default. A URL keeps its shape (it stays a valid URL, so jq and joins
work): the password of its userinfo and the values of query parameters whose
names look like secrets become ``***``; so do the values of credential and
cookie headers, names given with ``--redact``, and any literal ``--secret``
(``AFETCH_SECRET``: one a line) wherever it appears. ``--no-redact`` turns it
off for local debugging. Masking is the same in every run, so a masked URL
is still a record's identity for ``--resume``, ``--baseline`` and ``--report``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

MASK = "***"

#: Query parameters whose values are masked (matched case-insensitively): tokens,
#: keys, passwords, signatures (AWS SigV4, Azure SAS), OAuth codes and secrets.
SECRET_PARAMS = frozenset(
    {
        "token", "access_token", "refresh_token", "id_token", "auth", "auth_token",
        "api_key", "apikey", "api-key", "key", "secret", "client_secret", "password",
        "passwd", "pwd", "sig", "signature", "x-amz-signature", "x-amz-credential",
        "x-amz-security-token", "code", "session", "sessionid", "jwt",
    }
)  # fmt: skip
#: Headers whose values are masked.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


@dataclass(frozen=True, slots=True)
class Redaction:
    """What to mask; the default masks the documented names."""

    enabled: bool = True
    #: ``--redact NAME``: more query parameter or header names (lower case).
    names: frozenset[str] = frozenset()
    #: ``--secret VALUE``: literal values masked wherever they appear.
    secrets: tuple[str, ...] = ()

    def url(self, text: str) -> str:
        """A URL with its password and secret-looking query values masked."""
        if not self.enabled:
            return text
        if "@" in text:
            text = _mask_password(text)
        if "?" in text and "=" in text:
            text = self._mask_query(text)
        return self._mask_literals(text) if self.secrets else text

    def header(self, name: str, value: str) -> str:
        """A header's value as shown: masked for credential and cookie headers."""
        if not self.enabled:
            return value
        key = name.lower()
        if key in SECRET_HEADERS or key in self.names:
            return MASK
        if key in ("location", "content-location"):
            return self.url(value)
        return self._mask_literals(value)

    def text(self, message: str) -> str:
        """Free text (an error message, a command line): every URL in it and every literal."""
        if not self.enabled:
            return message
        if "://" in message:
            message = _URL_IN_TEXT.sub(lambda found: self.url(found.group()), message)
        elif "?" in message:  # a scheme-less URL (an input line): its query all the same
            message = self._mask_query(message)
        return self._mask_literals(message)

    def _mask_query(self, url: str) -> str:
        head, _, rest = url.partition("?")
        query, hash_, fragment = rest.partition("#")
        fields = query.split("&")
        changed = False
        for i, field in enumerate(fields):
            name, equals, value = field.partition("=")
            if equals and value and value != MASK and self._secret_name(name):
                fields[i] = f"{name}={MASK}"
                changed = True
            elif "%3D" in value or "%3d" in value:  # a URL or query inside a value
                inner = unquote(value)
                masked = self._mask_query(inner if "?" in inner else f"?{inner}")
                if masked != (inner if "?" in inner else f"?{inner}"):
                    masked = masked if "?" in inner else masked[1:]
                    fields[i] = f"{name}={quote(masked, safe='/:*')}"
                    changed = True
        if not changed:
            return url
        return f"{head}?{'&'.join(fields)}{hash_}{fragment}"

    def _secret_name(self, name: str) -> bool:
        key = unquote(name).lower()
        return key in SECRET_PARAMS or key in self.names

    def _mask_literals(self, text: str) -> str:
        for secret in self.secrets:
            if secret and secret in text:
                text = text.replace(secret, MASK)
        return text


def masked_argv(argv: list[str], redaction: Redaction) -> list[str]:
    """A command line as shown back (Ctrl-C's "to finish them"): secrets masked."""
    if not redaction.enabled:
        return argv
    shown = []
    after = ""
    for arg in argv:
        if after in ("-u", "--user") and ":" in arg:
            arg = f"{arg.partition(':')[0]}:{MASK}"
        elif after in ("-b", "--cookie", "--secret", "--oauth2-bearer"):
            arg = MASK
        elif after in ("-H", "--header") and ":" in arg:
            name, _, value = arg.partition(":")
            arg = f"{name}: {redaction.header(name.strip(), value.strip())}"
        else:
            arg = redaction.text(arg)
        shown.append(arg)
        after = arg if arg.startswith("-") else ""
    return shown


#: The default: the documented names masked.
REDACT = Redaction()
NO_REDACTION = Redaction(enabled=False)


def _mask_password(url: str) -> str:
    """``scheme://user:pass@host`` → ``scheme://user:***@host`` (the user name stays)."""
    start = url.find("://")
    if start < 0:
        return url
    start += 3
    end = len(url)
    for stop in "/?#":
        at = url.find(stop, start)
        if at >= 0:
            end = min(end, at)
    authority = url[start:end]
    at = authority.rfind("@")
    if at < 0:
        return url
    userinfo = authority[:at]
    user, colon, password = userinfo.partition(":")
    if not colon or not password or password == MASK:
        return url
    return f"{url[:start]}{user}:{MASK}{url[start + at :]}"
