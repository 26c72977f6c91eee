"""Bot walls: an answer that is a challenge, not the page (error kind ``blocked``).

A live page behind a bot wall answers a checker with 403, 429 or 503 and a
challenge, and LinkedIn with 999: that is not an outage, and CI checks that
call it one get switched off. Never a guess: a status alone (but 999) is not
a wall; a marker from this list must be in the headers or the first KiB of
the body. One entry per vendor marker, with where it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: Statuses a wall answers with; only these are looked at.
WALL_STATUSES = frozenset({403, 429, 503, 999})
#: Bytes of the body looked at for markers.
PEEK = 1024


@dataclass(frozen=True, slots=True)
class Marker:
    vendor: str
    header: str | None  # a header name (lower case) whose value must match ``pattern``
    pattern: re.Pattern[str]
    evidence: str  # what the record's message says was seen


def _m(vendor: str, header: str | None, pattern: str, evidence: str) -> Marker:
    return Marker(vendor, header, re.compile(pattern, re.IGNORECASE), evidence)


MARKERS = (
    # Cloudflare: the challenge platform sets cf-mitigated (developers.cloudflare.com,
    # "Challenge pages: detecting a challenge page response"); its pages load from
    # challenges.cloudflare.com and say "Just a moment...".
    _m("cloudflare", "cf-mitigated", r"challenge", "cf-mitigated: challenge"),
    _m("cloudflare", None, r"challenges\.cloudflare\.com|cf-chl-|cf_chl_opt", "a challenge page"),
    # Akamai Bot Manager: the edge's "Access Denied" page cites an edgesuite.net reference.
    _m("akamai", None, r"errors\.edgesuite\.net|Reference&#32;&#35;", "an Access Denied page"),
    # DataDome: its responses carry x-datadome, its captcha comes from captcha-delivery.com.
    _m("datadome", "x-datadome", r".", "x-datadome header"),
    _m("datadome", None, r"captcha-delivery\.com", "a DataDome captcha page"),
    # PerimeterX / HUMAN: the block page embeds the px-captcha element and _pxAppId.
    _m("perimeterx", None, r"px-captcha|_pxAppId|perimeterx", "a PerimeterX (HUMAN) block page"),
    # Imperva (Incapsula): incident pages reference _Incapsula_Resource; x-iinfo on answers.
    _m("imperva", None, r"_Incapsula_Resource|Incapsula incident", "an Imperva incident page"),
    _m("imperva", "x-cdn", r"incapsula|imperva", "x-cdn: Imperva"),
    # AWS WAF: CAPTCHA and Challenge actions answer with x-amzn-waf-action (AWS WAF docs).
    _m("aws-waf", "x-amzn-waf-action", r"captcha|challenge", "x-amzn-waf-action"),
    # Sucuri: the firewall's block page and its x-sucuri-block header.
    _m("sucuri", "x-sucuri-block", r".", "x-sucuri-block header"),
    _m("sucuri", None, r"Sucuri WebSite Firewall", "a Sucuri firewall page"),
)  # fmt: skip


def bot_wall(
    status: int, headers: Iterable[tuple[str, str]], body: bytes
) -> tuple[str, str] | None:
    """(vendor, evidence) when the answer is a bot wall's challenge; None otherwise."""
    if status == 999:
        return "linkedin", "status 999 (LinkedIn's answer to automated requests)"
    if status not in WALL_STATUSES:
        return None
    seen = {name.lower(): value for name, value in headers}
    text = body[:PEEK].decode("utf-8", "replace")
    for marker in MARKERS:
        if marker.header is None:
            if marker.pattern.search(text):
                return marker.vendor, marker.evidence
        elif (value := seen.get(marker.header)) is not None and marker.pattern.search(value):
            return marker.vendor, marker.evidence
    return None
