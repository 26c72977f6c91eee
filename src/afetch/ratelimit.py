"""A server's request budget, read from its rate-limit headers before it says 429.

Three spellings are read, and the most restrictive budget wins:

- IETF ``RateLimit`` / ``RateLimit-Policy`` (draft-ietf-httpapi-ratelimit-headers
  -08 and later, structured fields): ``RateLimit: "default";r=50;t=30`` (50
  requests left, the window resets in 30 s) and ``RateLimit-Policy:
  "default";q=100;w=60`` (100 per 60 s). Cloudflare sends these.
- The draft's earlier forms: ``RateLimit: limit=100, remaining=50, reset=30``
  (-07) and ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (-06 and before).
- The common ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (GitHub, GitLab,
  Twitter: ``Reset`` is a Unix time when it is that large, seconds otherwise)
  and ``X-RateLimit-Reset-After`` (seconds).

Unknown or malformed values are ignored, never an error: a header that says
nothing usable leaves the host's pace as it was.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from afetch.http.base import ResponseHeaders

#: A ``Reset`` this large is a Unix time, not seconds (the year 2001 on).
_EPOCH = 1_000_000_000
#: A window longer than a day is not a pacing hint we act on.
_LONGEST_WINDOW = 86_400.0
_PARAM = re.compile(r";\s*([a-z][a-z0-9_.*-]*)\s*=\s*([^;,\s]+)")
_MEMBER = re.compile(r"(?:^|,)\s*([a-z][a-z0-9_.*-]*)\s*=\s*([^,\s;]+)")


@dataclass(frozen=True, slots=True)
class Budget:
    """Requests left and seconds until the window resets; ``limit``: the window's quota."""

    remaining: int
    reset: float
    limit: int | None = None

    @property
    def low(self) -> bool:
        """Little enough left to pace: a quarter of the quota (at least 2), or 10 when the
        quota is not given. A big quota is spent at full speed until then."""
        return self.remaining <= (max(self.limit // 4, 2) if self.limit else 10)

    def interval(self) -> float:
        """Starts this far apart spend what is left evenly over the window."""
        return self.reset / (self.remaining + 1)


def read_budget(headers: ResponseHeaders) -> Budget | None:
    """The tightest budget the headers state; None when they state none."""
    if getattr(headers, "rate_limit", True) is False:
        return None  # the lean client's headers know: no lookups for most responses
    field = headers.get("RateLimit")
    if (
        field is None
        and headers.get("X-RateLimit-Remaining") is None
        and headers.get("RateLimit-Remaining") is None
    ):
        return None  # every response asks: the common answer first, in three lookups
    budgets = [] if field is None else _ietf(field, headers.get("RateLimit-Policy"))
    for prefix in ("RateLimit-", "X-RateLimit-"):
        remaining = _int(headers.get(prefix + "Remaining"))
        if remaining is None:
            continue
        reset = _seconds(headers.get(prefix + "Reset"))
        if reset is None:
            reset = _seconds(headers.get(prefix + "Reset-After"))
        if reset is not None:
            budgets.append(Budget(remaining, reset, _int(headers.get(prefix + "Limit"))))
    if not budgets:
        return None
    return max(budgets, key=lambda budget: (budget.remaining == 0, budget.interval()))


def _ietf(field: str, policy: str | None) -> list[Budget]:
    """``RateLimit`` in its structured-field list form (one item per policy) or its
    earlier dictionary form (``limit=, remaining=, reset=``)."""
    text = field.lower()
    if "remaining=" in text:  # draft -07: a dictionary
        members = dict(_MEMBER.findall(text))
        remaining, reset = _int(members.get("remaining")), _float(members.get("reset"))
        if remaining is None or reset is None or reset > _LONGEST_WINDOW:
            return []
        return [Budget(remaining, reset, _int(members.get("limit")))]
    quotas = {name: _int(params.get("q")) for name, params in _items(policy or "")}
    budgets = []
    for name, params in _items(text):
        remaining, reset = _int(params.get("r")), _float(params.get("t"))
        if remaining is not None and reset is not None and reset <= _LONGEST_WINDOW:
            budgets.append(Budget(remaining, reset, quotas.get(name)))
    return budgets


def _items(field: str) -> list[tuple[str, dict[str, str]]]:
    """A structured-field list's items: (name, parameters). Names are lower-cased."""
    items = []
    for part in field.lower().split(","):
        name, _, _ = part.partition(";")
        items.append((name.strip().strip('"'), dict(_PARAM.findall(part))))
    return items


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() and len(text) < 16 else None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None


def _seconds(text: str | None) -> float | None:
    """A ``Reset``: seconds from now, or a Unix time when it is that large."""
    value = _float(text)
    if value is None:
        return None
    if value >= _EPOCH:
        value = max(0.0, value - time.time())
    return value if value <= _LONGEST_WINDOW else None
