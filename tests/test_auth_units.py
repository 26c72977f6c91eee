"""Pure functions of redaction, Digest and the cookie jar: every branch, no network."""

from __future__ import annotations

import hashlib

from yarl import URL

from afetch.cookies import CookieJar
from afetch.digest import authorization, challenge
from afetch.redact import MASK, NO_REDACTION, REDACT, Redaction, masked_argv


def test_digest_challenges_that_cannot_be_answered_are_none() -> None:
    """No header, another scheme, no nonce, an unknown algorithm, auth-int only: None."""
    assert challenge(None) is None
    assert challenge('Basic realm="x"') is None
    assert challenge('Digest realm="x"') is None
    assert challenge('Digest realm="x", nonce="n", algorithm=SHA-512-256') is None
    assert challenge('Digest realm="x", nonce="n", qop="auth-int"') is None
    both = challenge('Digest realm="x", nonce="n", qop="auth,auth-int", realm="y"')
    assert both is not None
    assert both["realm"] == "x"  # the first challenge's parameters


def test_digest_answers_without_qop_and_with_md5_sess() -> None:
    """RFC 2069 (no qop) response = H(HA1:nonce:HA2); MD5-sess folds the nonces into HA1."""
    params = challenge('Digest realm="r", nonce="n", opaque="o"')
    assert params is not None
    answer = authorization(params, "u", "p", "GET", "/x")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    expected = md5(f"{md5('u:r:p')}:n:{md5('GET:/x')}")
    assert f'response="{expected}"' in answer
    assert 'opaque="o"' in answer
    assert "qop" not in answer
    sess = challenge('Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess')
    assert sess is not None
    assert "algorithm=MD5-sess" in authorization(sess, "u", "p", "GET", "/")


def test_redaction_off_changes_nothing_and_headers_are_masked_by_name() -> None:
    """--no-redact passes everything; on, credential headers and named ones are masked,
    a Location's query masked, other headers' literals masked."""
    url = "http://u:p@h/?token=t"
    assert NO_REDACTION.url(url) == url
    assert NO_REDACTION.header("Authorization", "Bearer x") == "Bearer x"
    assert NO_REDACTION.text(f"see {url}") == f"see {url}"
    assert masked_argv(["-u", "a:b"], NO_REDACTION) == ["-u", "a:b"]
    named = Redaction(names=frozenset({"x-api"}), secrets=("LIT",))
    assert named.header("X-Api", "v") == MASK
    assert named.header("Location", "/next?token=t") == f"/next?token={MASK}"
    assert named.header("X-Other", "a LIT b") == f"a {MASK} b"
    assert REDACT.text("host.test/x?token=t&x=1") == f"host.test/x?token={MASK}&x=1"
    assert REDACT.url("http://u@h/") == "http://u@h/"  # a user without a password
    shown = masked_argv(["-b", "k=v", "--secret", "s", "-H", "Cookie: c", "-H", "X: y"], REDACT)
    assert shown == ["-b", MASK, "--secret", MASK, "-H", f"Cookie: {MASK}", "-H", "X: y"]


def test_a_cookie_jar_learns_only_set_cookie_and_saves_nothing_without_a_file(
    tmp_path: object,
) -> None:
    """A response without Set-Cookie teaches nothing; save() without --cookie-jar is a no-op."""
    jar = CookieJar()
    jar.learn(URL("http://h.test/"), [("Content-Type", "text/plain")])
    assert len(jar) == 0
    assert jar.header_for(URL("http://h.test/")) is None
    jar.learn(URL("http://h.test/"), [("Set-Cookie", "a=1; Path=/")])
    assert jar.header_for(URL("http://h.test/x")) == "a=1"
    assert jar.header_for(URL("http://other.test/")) is None
    jar.save()
