"""Peer: a hand-written bounded-worker aiohttp script (the good pattern), on uvloop if installed.

Usage: python bounded_workers.py CONCURRENCY [aiodns] < urls.txt > records.jsonl

With ``aiodns`` names are resolved by c-ares (aiohttp's AsyncResolver); without,
by getaddrinfo on the default thread pool (aiohttp's ThreadedResolver, what a
plain ``pip install aiohttp`` uses: aiohttp picks AsyncResolver whenever
aiodns happens to be installed). BENCH_TIMEOUT (seconds) sets a total
limit per request (aiohttp's default: 300 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import aiohttp


async def worker(session: aiohttp.ClientSession, queue: asyncio.Queue[str | None]) -> None:
    while (url := await queue.get()) is not None:
        started = time.perf_counter()
        try:
            async with session.get(url) as response:
                size = len(await response.read())
                record = {"url": url, "status": response.status, "size": size}
        except Exception as exc:
            record = {"url": url, "error": repr(exc)}
        record["elapsed_ms"] = (time.perf_counter() - started) * 1000
        sys.stdout.write(json.dumps(record) + "\n")


async def main() -> None:
    concurrency = int(sys.argv[1])
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=concurrency)
    aiodns = sys.argv[2:] == ["aiodns"]
    resolver = aiohttp.AsyncResolver() if aiodns else aiohttp.ThreadedResolver()
    connector = aiohttp.TCPConnector(limit=concurrency, resolver=resolver)
    timeout = aiohttp.ClientTimeout(total=float(os.environ.get("BENCH_TIMEOUT", 300)))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        workers = [asyncio.create_task(worker(session, queue)) for _ in range(concurrency)]
        for line in sys.stdin:
            if line.strip():
                await queue.put(line.strip())
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
