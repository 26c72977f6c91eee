"""Peer: the tutorial pattern, one task per URL created up front and gathered.

Usage: python gather_all.py CONCURRENCY < urls.txt > records.jsonl

Names are resolved by getaddrinfo on the default thread pool, as with a plain
``pip install aiohttp``. BENCH_TIMEOUT (seconds) sets a total limit per request
(aiohttp's default: 300 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import aiohttp


async def fetch(session: aiohttp.ClientSession, limit: asyncio.Semaphore, url: str) -> None:
    started = time.perf_counter()
    async with limit:
        try:
            async with session.get(url) as response:
                body = await response.read()
                record = {"url": url, "status": response.status, "size": len(body)}
        except Exception as exc:
            record = {"url": url, "error": repr(exc)}
    record["elapsed_ms"] = (time.perf_counter() - started) * 1000
    sys.stdout.write(json.dumps(record) + "\n")


async def main() -> None:
    concurrency = int(sys.argv[1])
    urls = [line.strip() for line in sys.stdin if line.strip()]
    limit = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, resolver=aiohttp.ThreadedResolver())
    timeout = aiohttp.ClientTimeout(total=float(os.environ.get("BENCH_TIMEOUT", 300)))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*[fetch(session, limit, url) for url in urls], return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
