"""``--warn-on``: failures that are reported but do not fail the run.

A record is warned when every reason it is not ok is one the user listed:
its error kind (``timeout``, ``blocked``, ``dns``, …), its status (``429``,
``5xx``, ``500-504``: for ``http`` and ``blocked`` answers), or ``slow``
(over ``--max-latency``). A 503 that also missed ``--expect-body`` still
fails unless ``http`` is listed, since the body is a reason of its own.
Cancelled, skipped, invalid and internal records never warn: a run that
checked nothing must not pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from afetch.errors import ErrorKind
from afetch.expect import StatusSet, parse_statuses

#: Kinds a user may turn into warnings.
WARNABLE = frozenset(ErrorKind) - {
    ErrorKind.INVALID_INPUT,
    ErrorKind.CANCELLED,
    ErrorKind.SKIPPED,
    ErrorKind.INTERNAL,
}


@dataclass(frozen=True, slots=True)
class WarnOn:
    """The parsed ``--warn-on`` list; ``text`` is how the user wrote it."""

    kinds: frozenset[ErrorKind]
    statuses: StatusSet | None
    slow: bool
    text: str

    def covers(
        self,
        kind: ErrorKind,
        status: int | None,
        *,
        status_missed: bool = False,
        slow: bool = False,
        other_missed: bool = False,
    ) -> bool:
        """Whether a failure of ``kind`` is only for listed reasons.

        For ``http`` the reasons are the expectations it missed: the status
        (``status_missed``), the latency (``slow``) and any other (body,
        headers, jq, certificate: ``other_missed``).
        """
        if kind in self.kinds:
            return True
        by_status = status is not None and self.statuses is not None and status in self.statuses
        if kind is ErrorKind.BLOCKED:
            return by_status
        if kind is not ErrorKind.HTTP or other_missed:
            return False
        return (not status_missed or by_status) and (not slow or self.slow)


def parse_warn_on(text: str) -> WarnOn:
    """``"timeout,blocked,429,5xx,slow"`` → WarnOn; unknown words are an error."""
    kinds: set[ErrorKind] = set()
    statuses: list[str] = []
    slow = False
    for word in (part.strip().lower() for part in text.split(",")):
        if not word:
            continue
        if word == "slow":
            slow = True
        elif word in WARNABLE:
            kinds.add(ErrorKind(word))
        elif word[:1].isdigit():
            statuses.append(word)
        else:
            names = ", ".join(sorted(WARNABLE))
            raise ValueError(
                f"{word!r} is not an error kind ({names}), a status (429, 5xx, 500-504) or slow"
            )
    if not (kinds or statuses or slow):
        raise ValueError("--warn-on needs at least one kind, status or slow")
    return WarnOn(
        frozenset(kinds), parse_statuses(",".join(statuses)) if statuses else None, slow, text
    )
