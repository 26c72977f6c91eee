"""``--tls-info``: what the handshake of the connection that answered saw.

Protocol and cipher come from the SSL object; the certificate's facts from
``getpeercert()``, decoded once per distinct certificate (bounded cache,
keyed by its DER bytes): a reused connection and a host's next connections
cost a dictionary lookup. With ``-k`` (no verification) Python does not
decode the peer's certificate; it is then decoded from its DER through
the ``ssl`` module's own decoder (via a temporary PEM file), so
``--expect-cert-days`` works against self-signed hosts too.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

_CACHE: OrderedDict[bytes, dict[str, Any]] = OrderedDict()
_CACHE_SIZE = 1024
_DAY = 86400.0


def tls_facts(ssl_object: Any) -> dict[str, Any] | None:
    """The record's ``tls`` object for one response; None without a TLS connection."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(True)
    facts: dict[str, Any] = {"version": ssl_object.version(), "cipher": ssl_object.cipher()[0]}
    certificate = _certificate(der, ssl_object) if der else None
    if certificate is None:
        return facts | dict.fromkeys(
            ("subject", "issuer", "not_before", "not_after", "days_left", "san")
        )
    days_left = int((certificate["expires"] - time.time()) // _DAY)
    facts |= {key: value for key, value in certificate.items() if key != "expires"}
    facts["days_left"] = days_left
    return facts


def _certificate(der: bytes, ssl_object: Any) -> dict[str, Any] | None:
    cached = _CACHE.get(der)
    if cached is not None:
        _CACHE.move_to_end(der)
        return cached
    decoded = ssl_object.getpeercert() or _decode_unverified(der)
    if not decoded:
        return None
    expires = ssl.cert_time_to_seconds(decoded["notAfter"])
    certificate = {
        "subject": _name(decoded.get("subject", ())),
        "issuer": _name(decoded.get("issuer", ())),
        "not_before": _iso(ssl.cert_time_to_seconds(decoded["notBefore"])),
        "not_after": _iso(expires),
        "san": [value for _, value in decoded.get("subjectAltName", ())],
        "expires": expires,
    }
    _CACHE[der] = certificate
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return certificate


def _decode_unverified(der: bytes) -> dict[str, Any] | None:
    """Decode a certificate Python did not verify (``-k``): its own decoder wants a file."""
    decode = getattr(ssl._ssl, "_test_decode_cert", None)  # type: ignore[attr-defined]
    if decode is None:
        return None
    handle, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(handle, "w") as pem:
            pem.write(ssl.DER_cert_to_PEM_cert(der))
        decoded: dict[str, Any] = decode(path)
        return decoded
    except (OSError, ValueError, ssl.SSLError):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _name(rdns: Any) -> str:
    """``(( ('commonName', 'x'), ), ...)`` → ``"CN=x,O=Org"``."""
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
             "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}  # fmt: skip
    parts = [f"{short.get(key, key)}={value}" for rdn in rdns for key, value in rdn]
    return ",".join(parts)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
