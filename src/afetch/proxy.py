"""Which proxy a URL goes through: the standard environment variables, read once.

aiohttp's ``trust_env`` looks them up (and ~/.netrc) in a worker thread on
every request, which costs two thread hops per request and GIL contention;
here the environment is read once and the answer cached per scheme and host.
"""

from __future__ import annotations

import functools
import urllib.request

from yarl import URL


class EnvProxies:
    """HTTP(S)_PROXY / ALL_PROXY with NO_PROXY, as curl and requests honour them."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        if environ is None:
            self._proxies = urllib.request.getproxies_environment()
        else:
            self._proxies = {
                key.lower().removesuffix("_proxy"): value
                for key, value in environ.items()
                if key.lower().endswith("_proxy") and value
            }
        self._lookup = functools.lru_cache(maxsize=4096)(self._resolve)

    def __bool__(self) -> bool:
        return any(key != "no" for key in self._proxies)

    def for_url(self, url: URL) -> URL | None:
        """The proxy for this URL, or None to connect directly."""
        return self._lookup(url.scheme, url.host or "", url.port)

    def _resolve(self, scheme: str, host: str, port: int | None) -> URL | None:
        proxy = self._proxies.get(scheme) or self._proxies.get("all")
        if not proxy:
            return None
        if bypasses(self._proxies.get("no", ""), host, port):
            return None
        return URL(proxy if "://" in proxy else f"http://{proxy}")


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
