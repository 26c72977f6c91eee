"""Benchmark afetch against its peers, in one run, on this machine.

Starts its own local server (nginx when installed, else a Python aiohttp
server, and says which), writes the URL lists, then runs afetch, curl
--parallel and two plain aiohttp scripts in alternating rounds. Prints
medians, min-max and afetch/peer ratios, then afetch's peak RSS for a short
and a long list. Results also go to bench/out/results.json.

    python bench/run.py                 # N=20000, C=100, 3 rounds, RSS at 1e4 and 1e6
    python bench/run.py --quick         # fewer rounds, RSS at 1e4 and 1e5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
BIN = Path(sys.executable).parent

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log crit;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
}}
"""

PY_SERVER = """
import sys
from aiohttp import web
async def ok(request): return web.Response(text="ok\\n")
app = web.Application(); app.router.add_get("/{tail:.*}", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


@dataclass
class Sample:
    peer: str
    seconds: float
    max_rss_kib: int
    records: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


@contextmanager
def local_server(workdir: Path) -> Iterator[tuple[str, str]]:
    """(base URL, server description) of a server that lives for the block."""
    port = free_port()
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx:
        conf = workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=workdir, port=port))
        command = [nginx, "-c", str(conf), "-p", str(workdir)]
        version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
        name = f"{version} (1 worker)"
    else:
        command = [sys.executable, "-c", PY_SERVER, str(port)]
        name = "Python aiohttp server (nginx not installed)"
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}", name
    finally:
        server.terminate()
        server.wait(10)


def write_lists(workdir: Path, base: str, n: int) -> tuple[Path, Path]:
    urls = workdir / f"urls-{n}.txt"
    with urls.open("w") as handle:
        for i in range(n):
            handle.write(f"{base}/item/{i}\n")
    curl_config = workdir / f"urls-{n}.curl"
    with curl_config.open("w") as handle:
        for i in range(n):
            handle.write(f'url = "{base}/item/{i}"\noutput = "/dev/null"\n')
    return urls, curl_config


def measure(peer: str, command: list[str], stdin: Path | None, out: Path) -> Sample:
    """Run one peer; wall time and that child's own peak RSS (wait4, not getrusage)."""
    with out.open("wb") as sink, stdin.open("rb") if stdin else open(os.devnull, "rb") as source:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdin=source, stdout=sink, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    with out.open("rb") as handle:
        records = sum(1 for _ in handle)
    return Sample(peer, seconds, usage.ru_maxrss, records)


def afetch_command(urls: Path, c: int) -> list[str]:
    return [str(BIN / "afetch"), "-i", str(urls), "-c", str(c), "--no-progress", "--no-summary",
            "--exit-zero"]  # fmt: skip


def peers(c: int, urls: Path, curl_config: Path) -> dict[str, tuple[list[str], Path | None]]:
    python = str(BIN / "python")
    table: dict[str, tuple[list[str], Path | None]] = {
        "afetch": (afetch_command(urls, c), None),
        "curl --parallel": (
            [
                "curl",
                "--parallel",
                "--parallel-max",
                str(c),
                "-s",
                "-w",
                "%{json}\\n",
                "-K",
                str(curl_config),
            ],
            None,
        ),
        "gather-all script": ([python, str(HERE / "peers" / "gather_all.py"), str(c)], urls),
        "bounded-worker script": (
            [python, str(HERE / "peers" / "bounded_workers.py"), str(c)],
            urls,
        ),
    }
    if not shutil.which("curl"):
        del table["curl --parallel"]
    return table


def throughput(workdir: Path, base: str, n: int, c: int, rounds: int) -> dict[str, list[Sample]]:
    urls, curl_config = write_lists(workdir, base, n)
    table = peers(c, urls, curl_config)
    samples: dict[str, list[Sample]] = {name: [] for name in table}
    for round_no in range(rounds):
        order = list(table) if round_no % 2 == 0 else list(reversed(table))
        for name in order:
            command, stdin = table[name]
            sample = measure(name, command, stdin, workdir / "out.jsonl")
            samples[name].append(sample)
            print(
                f"  round {round_no + 1} {name:<22} {n / sample.seconds:9.0f} req/s "
                f"{sample.seconds:6.2f}s  rss {sample.max_rss_kib / 1024:6.1f} MiB  "
                f"records {sample.records}",
                flush=True,
            )
    return samples


def memory(workdir: Path, base: str, sizes: list[int], c: int) -> dict[int, Sample]:
    results = {}
    for n in sizes:
        urls, _ = write_lists(workdir, base, n)
        sample = measure("afetch", afetch_command(urls, c), None, Path(os.devnull))
        results[n] = sample
        print(
            f"  afetch N={n:>8}: peak RSS {sample.max_rss_kib / 1024:6.1f} MiB "
            f"in {sample.seconds:6.1f}s ({n / sample.seconds:.0f} req/s)",
            flush=True,
        )
    return results


def report(samples: dict[str, list[Sample]], n: int) -> list[dict[str, object]]:
    afetch_rate = statistics.median(n / s.seconds for s in samples["afetch"])
    rows = []
    print("\n| peer | req/s (median) | min-max | afetch / peer | peak RSS MiB | records |")
    print("|---|---|---|---|---|---|")
    for name, runs in samples.items():
        rates = [n / s.seconds for s in runs]
        median = statistics.median(rates)
        rss = max(s.max_rss_kib for s in runs) / 1024
        ratio = afetch_rate / median
        print(
            f"| {name} | {median:.0f} | {min(rates):.0f}-{max(rates):.0f} | {ratio:.2f}x "
            f"| {rss:.1f} | {runs[-1].records} |"
        )
        rows.append(
            {
                "peer": name,
                "median_rps": median,
                "min_rps": min(rates),
                "max_rps": max(rates),
                "afetch_ratio": ratio,
                "peak_rss_mib": rss,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="requests per throughput run")
    parser.add_argument("-c", type=int, default=100, help="concurrency for every peer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", default="10000,1000000", help="list sizes for afetch's RSS")
    parser.add_argument("--quick", action="store_true", help="2 rounds, RSS at 1e4 and 1e5")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.memory = 2, "10000,100000"
    OUT.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="afetch-bench-") as tmp,
        local_server(Path(tmp)) as (
            base,
            server,
        ),
    ):
        workdir = Path(tmp)
        print(f"server: {server}; machine: {platform.platform()}, {os.cpu_count()} cores")
        print(f"throughput: N={args.n}, C={args.c}, {args.rounds} rounds (alternating order)")
        samples = throughput(workdir, base, args.n, args.c, args.rounds)
        rows = report(samples, args.n)
        print("\nmemory (afetch, no --body):")
        mem = memory(workdir, base, [int(x) for x in args.memory.split(",")], args.c)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "server": server,
        "n": args.n,
        "c": args.c,
        "rounds": args.rounds,
        "throughput": rows,
        "memory": {str(n): s.max_rss_kib / 1024 for n, s in mem.items()},
    }
    (OUT / "results.json").write_text(json.dumps(result, indent=2))
    print(f"\nwritten: {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
