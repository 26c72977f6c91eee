"""``--digest``: HTTP Digest authentication (RFC 7616: MD5 and SHA-256, ``qop=auth``).

The first request goes without credentials; a 401 whose ``WWW-Authenticate``
offers Digest is answered once, on the same origin only (a redirect to
another origin never carries the credentials), with the response computed
from ``-u USER:PASS``. A second 401 is the record, as curl records it.
"""

from __future__ import annotations

import hashlib
import os
import re

_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)')
_ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256, "MD5-SESS": hashlib.md5}


def challenge(header: str | None) -> dict[str, str] | None:
    """The Digest challenge's parameters (lower-case names), or None if none is offered."""
    if not header:
        return None
    at = header.lower().find("digest ")
    if at < 0:
        return None
    params: dict[str, str] = {}
    for name, value in _PARAM.findall(header[at + 7 :]):
        key = name.lower()
        if key in params:  # a second scheme's parameters: stop at the first challenge's
            break
        params[key] = value[1:-1].replace('\\"', '"') if value.startswith('"') else value
    if "nonce" not in params or "realm" not in params:
        return None
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in _ALGORITHMS:
        return None
    qops = [q.strip() for q in params.get("qop", "auth").split(",")]
    if "qop" in params and "auth" not in qops:
        return None  # auth-int only: the body would have to be hashed too
    return params


def authorization(params: dict[str, str], user: str, password: str, method: str, uri: str) -> str:
    """The ``Authorization: Digest ...`` value answering ``params`` for one request."""
    algorithm = params.get("algorithm", "MD5").upper()
    digest = _ALGORITHMS[algorithm]

    def h(text: str) -> str:
        return digest(text.encode()).hexdigest()

    realm, nonce = params["realm"], params["nonce"]
    cnonce = os.urandom(8).hex()
    ha1 = h(f"{user}:{realm}:{password}")
    if algorithm == "MD5-SESS":
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    fields = {
        "username": f'"{user}"',
        "realm": f'"{realm}"',
        "nonce": f'"{nonce}"',
        "uri": f'"{uri}"',
        "algorithm": params.get("algorithm", "MD5"),
    }
    if "qop" in params:
        nc = "00000001"
        fields["response"] = f'"{h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")}"'
        fields.update(qop="auth", nc=nc, cnonce=f'"{cnonce}"')
    else:  # RFC 2069, no qop
        fields["response"] = f'"{h(f"{ha1}:{nonce}:{ha2}")}"'
    if "opaque" in params:
        fields["opaque"] = f'"{params["opaque"]}"'
    return "Digest " + ", ".join(f"{name}={value}" for name, value in fields.items())
