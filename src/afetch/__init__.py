"""afetch: a concurrent URL fetcher; URLs in, one JSON record per request out.

The HTTP machinery (aiohttp) is imported on first use of ``fetch_all`` or
``stream``, so ``afetch --version`` and ``--help`` start fast.
"""

from __future__ import annotations

from afetch._version import __version__

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs 5 ms of start-up
if TYPE_CHECKING:
    from afetch.api import fetch_all, stream
    from afetch.config import Config
    from afetch.errors import ErrorKind
    from afetch.models import FetchResult, FetchSpec

__all__ = [
    "Config",
    "ErrorKind",
    "FetchResult",
    "FetchSpec",
    "__version__",
    "fetch_all",
    "stream",
]

_LAZY = {
    "fetch_all": "afetch.api",
    "stream": "afetch.api",
    "Config": "afetch.config",
    "ErrorKind": "afetch.errors",
    "FetchResult": "afetch.models",
    "FetchSpec": "afetch.models",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'afetch' has no attribute {name!r}")
