"""Environment proxies: read once, NO_PROXY respected, cached per host."""

from __future__ import annotations

from yarl import URL

from afetch.proxy import EnvProxies, bypasses


def test_scheme_proxy_all_proxy_and_no_proxy() -> None:
    """http_proxy for http, all_proxy as fallback, no_proxy hosts go direct."""
    proxies = EnvProxies(
        {
            "http_proxy": "http://p:3128",
            "ALL_PROXY": "proxy.local:8080",
            "no_proxy": "internal.example",
        }
    )
    assert proxies
    assert proxies.for_url(URL("http://a.example/")) == URL("http://p:3128")
    assert proxies.for_url(URL("https://a.example/")) == URL("http://proxy.local:8080")
    assert proxies.for_url(URL("http://internal.example/x")) is None
    assert proxies.for_url(URL("http://api.internal.example/x")) is None


def test_no_environment_means_no_proxy() -> None:
    """Without proxy variables every URL connects directly."""
    proxies = EnvProxies({})
    assert not proxies
    assert proxies.for_url(URL("http://a.example/")) is None


def test_no_proxy_entries_match_like_curl() -> None:
    """'*', domain suffixes with or without a dot, and host:port entries."""
    assert bypasses("*", "any.host", 80)
    assert bypasses(".example.com", "a.example.com", 443)
    assert bypasses("example.com", "example.com", 443)
    assert not bypasses("example.com", "badexample.com", 443)
    assert bypasses("localhost:8080", "localhost", 8080)
    assert not bypasses("localhost:8080", "localhost", 9090)
    assert not bypasses("", "localhost", 80)
