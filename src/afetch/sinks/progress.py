"""Results → a tqdm bar on stderr (total unknown when reading a stream)."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

from afetch.models import FetchResult

if TYPE_CHECKING:
    from tqdm import tqdm


class Progress:
    """A thin tqdm wrapper; does nothing when disabled."""

    def __init__(self, stream: IO[str], *, enabled: bool, total: int | None = None) -> None:
        self._bar: tqdm[Any] | None = None
        self._failed = 0
        if enabled:
            from tqdm import tqdm  # 10 ms of imports, paid only when the bar is shown

            self._bar = tqdm(
                total=total,
                file=stream,
                unit="req",
                dynamic_ncols=True,
                mininterval=0.2,
                leave=False,
            )

    def update(self, result: FetchResult) -> None:
        if self._bar is None:
            return
        if not result.ok:
            self._failed += 1
            self._bar.set_postfix_str(f"not ok {self._failed}", refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
