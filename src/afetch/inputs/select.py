"""Which numbered requests this run fetches: its ``--shard``, less what ``--resume``
found done.

Selection comes after numbering, so every shard and every resumed run agree
on each request's index. ``--shard-key host`` sends all of a host's requests
to one shard, so ``--per-host`` and ``--host-interval`` hold across machines;
the hash is BLAKE2b of the lower-case host name (IDNA form, no port, no
scheme, no trailing dot), the
same on every machine and Python version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Literal, Protocol

from afetch.models import FetchResult, FetchSpec

ShardKey = Literal["index", "host"]
Selection = Callable[[FetchSpec | FetchResult], bool]


class Indices(Protocol):
    def __contains__(self, index: int) -> bool: ...


def host_shard(host: str, shards: int) -> int:
    """The shard (0 .. shards-1) a host's requests go to."""
    digest = hashlib.blake2b(host.lower().rstrip(".").encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def selection(
    shard: tuple[int, int] | None,
    key: ShardKey = "index",
    done: Indices | None = None,
) -> Selection | None:
    """The test a numbered request passes to be fetched here; None: all are."""
    if shard is None and done is None:
        return None
    k, n = shard or (1, 1)
    mine = k - 1

    def in_shard(item: FetchSpec | FetchResult) -> bool:
        # An invalid line has no host to hash: its index places it, in one shard only.
        if key == "host" and isinstance(item, FetchSpec):
            return host_shard(item.target.raw_host or "", n) == mine
        return item.index % n == mine

    if done is None:
        return in_shard
    if n == 1:
        return lambda item: item.index not in done
    return lambda item: item.index not in done and in_shard(item)
