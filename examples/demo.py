"""``make run``: afetch's main job against a small local server it starts and stops.

Nothing leaves this machine: the server listens on 127.0.0.1 on a free port,
answers most URLs well and a few badly on purpose (a 404, a 503, a refused
port, a slow page under a short timeout), and afetch fetches the list the way
a user fetches theirs: records on stdout, a summary on stderr. The same
command on a real list is in the README's quick start.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from aiohttp import web


def app() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=f"page {request.match_info['n']}\n")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]))

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "1")))
        return web.Response(text="late\n")

    async def api(request: web.Request) -> web.Response:
        return web.json_response({"status": "up", "items": [1, 2, 3]})

    application = web.Application()
    application.router.add_get("/page/{n}", page)
    application.router.add_get("/status/{code}", status)
    application.router.add_get("/slow", slow)
    application.router.add_get("/api/health", api)
    return application


def serve(sock: socket.socket, ready: threading.Event) -> None:
    async def main() -> None:
        runner = web.AppRunner(app(), access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def url_list(base: str) -> str:
    return "\n".join(
        [
            "# The demo list: most answer, some fail on purpose.",
            *(f"{base}/page/{n}" for n in range(1, 21)),
            f"{base}/api/health",
            f'{{"url": "{base}/api/health", "id": "api-up",'
            ' "expect": {"jq": ".status == \\"up\\""}}',
            f"{base}/status/404",
            f"{base}/status/503",
            f'{{"url": "{base}/slow?s=3", "id": "too-slow", "timeout": 0.5}}',
            "http://127.0.0.1:1/refused",
            "",
        ]
    )


def main() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    ready = threading.Event()
    threading.Thread(target=serve, args=(sock, ready), daemon=True).start()
    if not ready.wait(10):
        print("demo: the local server did not start", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        urls = Path(folder) / "urls.txt"
        urls.write_text(url_list(base))
        afetch = Path(sys.executable).with_name("afetch")
        command = [str(afetch), "-i", str(urls), "--retries", "0", "--summary", "--exit-zero"]
        print(f"demo: {' '.join(command[:3])} (a local server at {base})", file=sys.stderr)
        return subprocess.run(command, check=False, env=os.environ).returncode


if __name__ == "__main__":
    sys.exit(main())
