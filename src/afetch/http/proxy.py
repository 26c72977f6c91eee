"""Which proxy a URL goes through: ``--proxy`` or the environment, read once.

aiohttp's ``trust_env`` looks the variables up (and ~/.netrc) in a helper
thread on every request, which costs two thread hops per request and GIL
contention; here they are read once and the answer cached per host.
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Mapping
from typing import NamedTuple

from yarl import URL

#: Proxy schemes the lean client speaks through python-socks.
SOCKS_SCHEMES = frozenset({"socks5", "socks5h", "socks4", "socks4a"})


class Route(NamedTuple):
    """The proxy to use (None: connect directly) and headers meant for the proxy only."""

    proxy: URL | None
    headers: Mapping[str, str] | None


DIRECT = Route(None, None)


class Proxies:
    """HTTP(S)_PROXY / ALL_PROXY with NO_PROXY, as curl honours them."""

    def __init__(self, proxies: Mapping[str, str]) -> None:
        self._proxies = {key: value for key, value in proxies.items() if value}
        self._lookup = functools.lru_cache(maxsize=4096)(self._resolve)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Proxies:
        """``*_proxy`` variables, either case (lower case wins, as in curl)."""
        return cls(_environment(os.environ if environ is None else environ))

    @classmethod
    def from_option(cls, option: str | None, no_proxy: str | None = None) -> Proxies:
        """``--proxy URL`` for every URL (NO_PROXY still applies); ``''`` for none.
        ``--noproxy HOSTS`` replaces NO_PROXY, as in curl."""
        if option == "":
            return cls({})
        found = _environment(os.environ)
        if option is not None:
            found = {"all": option, "no": found.get("no", "")}
        if no_proxy is not None:
            found["no"] = no_proxy
        return cls(found)

    def __bool__(self) -> bool:
        if self._proxies.get("no", "").strip() == "*":
            return False  # every host bypasses them
        return any(key != "no" for key in self._proxies)

    @property
    def only_socks(self) -> bool:
        """Every proxy given is SOCKS: the lean client carries them all (no aiohttp)."""
        return all(
            value.partition("://")[0].lower() in SOCKS_SCHEMES
            for key, value in self._proxies.items()
            if key != "no"
        )

    def for_url(self, url: URL) -> Route:
        """Where a request for this URL goes."""
        return self._lookup(url.scheme, url.host or "", url.port)

    def _resolve(self, scheme: str, host: str, port: int | None) -> Route:
        proxy = self._proxies.get(scheme) or self._proxies.get("all")
        if not proxy or bypasses(self._proxies.get("no", ""), host, port):
            return DIRECT
        url = URL(proxy if "://" in proxy else f"http://{proxy}")
        if url.scheme in SOCKS_SCHEMES:
            return Route(url, None)  # credentials go in the SOCKS handshake (lean client)
        if url.user is None:
            return Route(url, None)
        # Credentials go to the proxy as a header (in CONNECT for HTTPS), never to the origin.
        token = base64.b64encode(f"{url.user}:{url.password or ''}".encode()).decode("ascii")
        return Route(url.with_user(None), {"Proxy-Authorization": f"Basic {token}"})


def _environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``*_proxy`` variables by scheme (``no`` for NO_PROXY). Read here rather than
    with urllib.request, whose import (email, tempfile, logging) would add 15 ms to
    every start."""
    found: dict[str, str] = {}
    for key in sorted(environ, key=lambda k: k.islower()):  # lower case last: it wins
        if key.lower().endswith("_proxy"):
            found[key.lower().removesuffix("_proxy")] = environ[key]
    return found


def bypasses(no_proxy: str, host: str, port: int | None) -> bool:
    """NO_PROXY as curl reads it: ``*``, host names (with subdomains), optional ``:port``."""
    host = host.lower().rstrip(".")
    for entry in (item.strip().lower() for item in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".").rstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False
