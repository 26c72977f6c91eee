"""``--repro``: a failed record's ``curl`` command, to reproduce the request by hand.

Built from what was sent: method, URL, headers (the run's and the line's),
the body, the address afetch connected to (``--resolve``), HTTP/1.1, the
time limit, the TLS options, cookie file, Digest user and proxy as given;
shell-quoted, secrets masked as in every other output (``afetch.redact``).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from afetch.config import Config
    from afetch.models import FetchSpec

#: Bodies up to this size (and text) are written into the command; larger ones are named.
_INLINE_BODY = 4096


def curl_command(spec: FetchSpec, config: Config, remote_ip: str | None) -> str:
    """The ``curl`` command line that sends the same request."""
    redaction = config.redaction
    words = ["curl", "--http1.1", "-sS", "-o", "/dev/null", "-w", "%{http_code}\\n"]
    method = spec.method
    if method == "HEAD":
        words.append("-I")
    elif method != "GET" or spec.body is not None or config.body is not None:
        words += ["-X", method]
    given = {name.lower() for name, _ in spec.headers}
    for name, value in (*(h for h in config.headers if h[0].lower() not in given), *spec.headers):
        words += ["-H", f"{name}: {redaction.header(name, value)}"]
    body = spec.body if spec.body is not None else config.body
    if body is not None:
        words += ["--data-binary", _body(body)]
    target = spec.target
    host = target.raw_host or ""
    if remote_ip and host and host != remote_ip and not config.proxy:
        address = f"[{remote_ip}]" if ":" in remote_ip else remote_ip
        words += ["--resolve", f"{host}:{target.port}:{address}"]  # yarl fills 80/443
    words += ["--max-time", f"{spec.timeout or config.timeout:g}"]
    if config.follow:
        words += ["-L", "--max-redirs", str(config.max_redirects)]
    tls = config.tls_options
    if tls is not None:
        if tls.insecure:
            words.append("-k")
        if tls.cacert:
            words += ["--cacert", tls.cacert]
    if config.cookie_file:
        words += ["-b", config.cookie_file]
    if config.digest_user:
        words += ["--digest", "-u", f"{config.digest_user[0]}:***"]
    if config.proxy:
        words += ["--proxy", redaction.url(config.proxy)]
    words.append(spec.url)  # already masked by the parser
    return shlex.join(words)


def _body(body: bytes) -> str:
    if len(body) <= _INLINE_BODY:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return f"@body-of-{len(body)}-bytes"  # too large or binary: save it there first
