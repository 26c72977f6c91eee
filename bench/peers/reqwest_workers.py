"""Peer: bounded asyncio workers over pyreqwest (Rust reqwest, hyper, rustls), on uvloop.

What a Python user might write today instead of installing afetch: about 40 lines.
Usage: python reqwest_workers.py CONCURRENCY < urls.txt > records.jsonl

Trusts the CA in SSL_CERT_FILE as well (the benchmark's private CA), follows no
redirects, and sets a total limit per request from BENCH_TIMEOUT (seconds,
default 300). Negotiates HTTP/2 by ALPN where the server offers it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import timedelta

from pyreqwest.client import Client, ClientBuilder


async def worker(client: Client, queue: asyncio.Queue[str | None]) -> None:
    while (url := await queue.get()) is not None:
        started = time.perf_counter()
        try:
            response = await client.get(url).build().send()
            size = len(await response.bytes())
            record = {"url": url, "status": response.status, "size": size}
        except Exception as exc:
            record = {"url": url, "error": repr(exc)}
        record["elapsed_ms"] = (time.perf_counter() - started) * 1000
        sys.stdout.write(json.dumps(record) + "\n")


async def main(root_ca: bytes | None) -> None:
    concurrency = int(sys.argv[1])
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=concurrency)
    builder = (
        ClientBuilder()
        .max_connections(concurrency)
        .max_redirects(0)
        .timeout(timedelta(seconds=float(os.environ.get("BENCH_TIMEOUT", 300))))
    )
    if root_ca is not None:
        builder = builder.add_root_certificate_pem(root_ca)
    async with builder.build() as client:
        workers = [asyncio.create_task(worker(client, queue)) for _ in range(concurrency)]
        for line in sys.stdin:
            if line.strip():
                await queue.put(line.strip())
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)


if __name__ == "__main__":
    ca = os.environ.get("SSL_CERT_FILE")
    with open(ca or os.devnull, "rb") as pem:
        root = pem.read() if ca else None
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(root))
    else:
        uvloop.run(main(root))
