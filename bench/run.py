"""Benchmark afetch against its peers, in one run, on this machine.

Starts its own local server (nginx when installed — with the echo module for
the 50 ms endpoint when that is installed — else a Python aiohttp server, and
says which), writes the URL lists, and runs every peer in alternating rounds:

- tiny: N=20 000 tiny responses at C=100 — requests per second;
- latency: N=2 000 responses that each take 50 ms at C=100 (ideal 1.0 s),
  and N=20 000 at C=1 000 (ideal 1.0 s) — wall time and efficiency;
- start-up: ``python -c 'import aiohttp'`` against afetch's first record,
  ``--version`` and ``--help``;
- memory: afetch's peak RSS at N=10⁴ and 10⁶.

Prints medians, min-max and afetch/peer ratios, writes bench/out/results.json
and draws bench/out/chart.png (matplotlib). ``make bench`` runs it.

    python bench/run.py            # everything, about 8 minutes
    python bench/run.py --quick    # 2 rounds, memory at 10⁴ and 10⁵
"""

from __future__ import annotations

import argparse
import importlib.util
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
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
BIN = Path(sys.executable).parent
ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")

NGINX_CONF = """
{load}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log crit;
events {{ worker_connections 8192; }}
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
        listen 127.0.0.1:{port} backlog=8192;
        {delay}
        location / {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
}}
"""
NGINX_DELAY = 'location /delay { default_type text/plain; echo_sleep 0.05; echo "ok"; }'

PY_SERVER = """
import asyncio, sys
from aiohttp import web
async def ok(request): return web.Response(text="ok\\n")
async def delay(request):
    await asyncio.sleep(0.05)
    return web.Response(text="ok\\n")
app = web.Application()
app.router.add_get("/delay/{tail:.*}", delay)
app.router.add_get("/{tail:.*}", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None,
            backlog=8192)
"""


@dataclass
class Sample:
    seconds: float
    max_rss_kib: int
    records: int
    cpu: float = 0.0  # user + system seconds of the peer and its children


@dataclass
class Scenario:
    name: str
    n: int
    c: int
    path: str
    ideal: float | None = None
    samples: dict[str, list[Sample]] = field(default_factory=dict)


def fresh_bytecode() -> None:
    """Compile afetch's sources first: with PYTHONDONTWRITEBYTECODE (set on these
    machines) a source edited since install is compiled again at every start,
    60-80 ms of each run that no user of an installed afetch pays."""
    import compileall

    compileall.compile_dir(HERE.parent / "src", quiet=1)


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


def start(command: list[str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return server


@contextmanager
def servers(workdir: Path) -> Iterator[tuple[str, str, str, str]]:
    """(tiny base URL, delay base URL, description of each) for the block."""
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    started: list[subprocess.Popen[bytes]] = []
    try:
        py_port = free_port()
        python_server = None
        if nginx:
            port = free_port()
            echo = ECHO_MODULE.exists()
            conf = workdir / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(
                    dir=workdir,
                    port=port,
                    load=f"load_module {ECHO_MODULE};" if echo else "",
                    delay=NGINX_DELAY if echo else "",
                )
            )
            started.append(start([nginx, "-c", str(conf), "-p", str(workdir)], port))
            version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
            tiny = f"http://127.0.0.1:{port}"
            tiny_name = f"{version.removeprefix('nginx version: ')} (1 worker)"
            if echo:
                delay, delay_name = tiny, f"{tiny_name} with echo_sleep 0.05"
            else:
                python_server = True
        else:
            python_server = True
            tiny = ""
        if python_server:
            started.append(start([sys.executable, "-c", PY_SERVER, str(py_port)], py_port))
            delay, delay_name = (
                f"http://127.0.0.1:{py_port}",
                "Python aiohttp server (asyncio.sleep)",
            )
            if not tiny:
                tiny, tiny_name = delay, "Python aiohttp server (nginx not installed)"
        yield tiny, delay, tiny_name, delay_name
    finally:
        for server in started:
            server.terminate()
            server.wait(10)


def write_lists(workdir: Path, base: str, path: str, n: int) -> tuple[Path, Path]:
    urls = workdir / f"urls-{path.strip('/') or 'tiny'}-{n}.txt"
    curl_config = urls.with_suffix(".curl")
    if not urls.exists():
        with urls.open("w") as plain, curl_config.open("w") as config:
            for i in range(n):
                plain.write(f"{base}{path}/{i}\n")
                config.write(f'url = "{base}{path}/{i}"\noutput = "/dev/null"\n')
    return urls, curl_config


def measure(command: list[str], stdin: Path | None, out: Path, shell: bool = False) -> Sample:
    """Run one peer; wall time and that child's own peak RSS (wait4, not getrusage)."""
    with out.open("wb") as sink, stdin.open("rb") if stdin else open(os.devnull, "rb") as source:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command if not shell else " ".join(command),
            stdin=source,
            stdout=sink,
            stderr=subprocess.DEVNULL,
            shell=shell,
        )
        _, _, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    with out.open("rb") as handle:
        records = sum(1 for line in handle if line.startswith(b"{"))
    return Sample(seconds, usage.ru_maxrss, records, usage.ru_utime + usage.ru_stime)


def afetch(urls: Path, c: int, *extra: str) -> list[str]:
    return [str(BIN / "afetch"), "-i", str(urls), "-c", str(c), "--no-progress", "--no-summary",
            "--exit-zero", *extra]  # fmt: skip


def peers(c: int, urls: Path, curl_config: Path) -> dict[str, tuple[list[str], Path | None, bool]]:
    """name → (command, stdin, run through the shell)."""
    python = str(BIN / "python")
    table: dict[str, tuple[list[str], Path | None, bool]] = {
        "afetch": (afetch(urls, c), None, False),
        "afetch --workers 2": (afetch(urls, c, "--workers", "2"), None, False),
        "curl -Z": (
            [
                "curl",
                "--parallel",
                "--parallel-max",
                str(c),
                "-s",
                "--no-progress-meter",  # curl 7.88 draws its parallel meter despite -s
                "-w",
                "%{json}\\n",
                "-K",
                str(curl_config),
            ],
            None,
            False,
        ),
        "xargs -P curl": (
            [
                "xargs",
                "-P",
                str(c),
                "-n",
                "50",
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "'%{json}\\n'",
            ],
            urls,
            True,
        ),
        "gather-all script": ([python, str(HERE / "peers" / "gather_all.py"), str(c)], urls, False),
        "bounded-worker script + uvloop": (
            [python, str(HERE / "peers" / "bounded_workers.py"), str(c)],
            urls,
            False,
        ),
        "bounded workers + pyreqwest": (
            [python, str(HERE / "peers" / "reqwest_workers.py"), str(c)],
            urls,
            False,
        ),
    }
    if importlib.util.find_spec("pyreqwest") is None:  # make bench installs it
        del table["bounded workers + pyreqwest"]
    if not shutil.which("curl"):
        del table["curl -Z"], table["xargs -P curl"]
    return table


def run_scenario(workdir: Path, base: str, scenario: Scenario, rounds: int) -> None:
    urls, curl_config = write_lists(workdir, base, scenario.path, scenario.n)
    table = peers(scenario.c, urls, curl_config)
    print(f"\n== {scenario.name}: N={scenario.n}, C={scenario.c} ==", flush=True)
    for round_no in range(rounds):
        order = list(table) if round_no % 2 == 0 else list(reversed(table))
        for name in order:
            command, stdin, shell = table[name]
            sample = measure(command, stdin, workdir / "out.jsonl", shell)
            scenario.samples.setdefault(name, []).append(sample)
            rate = scenario.n / sample.seconds
            rss = sample.max_rss_kib / 1024
            print(
                f"  round {round_no + 1} {name:<32} {sample.seconds:6.2f}s {rate:8.0f} req/s"
                f"  rss {rss:6.1f} MiB  records {sample.records}",
                flush=True,
            )


def wrk_ceiling(base: str, c: int) -> float | None:
    if not shutil.which("wrk"):
        return None
    proc = subprocess.run(
        ["wrk", "-t1", f"-c{c}", "-d3s", f"{base}/wrk"], capture_output=True, text=True, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return None


def report(scenario: Scenario) -> list[dict[str, object]]:
    afetch_median = statistics.median(s.seconds for s in scenario.samples["afetch"])
    rows = []
    ideal = f" (ideal {scenario.ideal:.1f} s)" if scenario.ideal else ""
    print(f"\n{scenario.name}: N={scenario.n}, C={scenario.c}{ideal}")
    print(
        "| peer | wall s (median) | min-max | req/s | afetch speed / peer | efficiency "
        "| CPU µs/req | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in scenario.samples.items():
        walls = [s.seconds for s in runs]
        median = statistics.median(walls)
        efficiency = scenario.ideal / median if scenario.ideal else None
        row = {
            "peer": name,
            "median_s": round(median, 3),
            "min_s": round(min(walls), 3),
            "max_s": round(max(walls), 3),
            "rps": round(scenario.n / median),
            "afetch_ratio": round(median / afetch_median, 2),
            "efficiency": round(efficiency, 2) if efficiency else None,
            "cpu_us_per_request": round(
                statistics.median(s.cpu for s in runs) * 1e6 / max(scenario.n, 1), 1
            ),
            "peak_rss_mib": round(max(s.max_rss_kib for s in runs) / 1024, 1),
            "records": runs[-1].records,
        }
        rows.append(row)
        print(f"| {name} | {median:.2f} | {min(walls):.2f}-{max(walls):.2f} | {row['rps']} "
              f"| {row['afetch_ratio']:.2f}x | {'' if efficiency is None else f'{efficiency:.2f}'} "
              f"| {row['cpu_us_per_request']} | {row['peak_rss_mib']} |")  # fmt: skip
    return rows


def startup(base: str, runs: int = 15) -> dict[str, float]:
    python = str(BIN / "python")
    afetch_bin = str(BIN / "afetch")

    def whole(cmd: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        return time.perf_counter() - started

    def first_record(cmd: list[str]) -> float:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        proc.stdout.readline()
        elapsed = time.perf_counter() - started
        proc.wait()
        return elapsed

    samples: dict[str, list[float]] = {}
    for _ in range(runs):  # interleaved, so drift hits all alike
        samples.setdefault("python -c 'import aiohttp'", []).append(
            whole([python, "-c", "import aiohttp"])
        )
        samples.setdefault("afetch URL: first record", []).append(
            first_record([afetch_bin, f"{base}/one"])
        )
        samples.setdefault("afetch --version", []).append(whole([afetch_bin, "--version"]))
        samples.setdefault("afetch --help", []).append(whole([afetch_bin, "--help"]))
        samples.setdefault("curl --version", []).append(whole(["curl", "--version"]))
    medians = {name: round(statistics.median(values) * 1000, 1) for name, values in samples.items()}
    print(f"\nstart-up (median of {runs}, ms):")
    for name, value in medians.items():
        print(f"  {name:<32} {value:7.1f}")
    ratio = medians["afetch URL: first record"] / medians["python -c 'import aiohttp'"]
    print(f"  first record / import aiohttp: {ratio:.2f}x")
    return medians


def memory(workdir: Path, base: str, sizes: list[int], c: int) -> dict[str, float]:
    results = {}
    print("\nmemory (afetch, no --body):")
    for n in sizes:
        urls, _ = write_lists(workdir, base, "/item", n)
        sample = measure(afetch(urls, c), None, Path(os.devnull))
        results[str(n)] = round(sample.max_rss_kib / 1024, 1)
        rss = sample.max_rss_kib / 1024
        print(
            f"  N={n:>8}: peak RSS {rss:6.1f} MiB in {sample.seconds:6.1f}s "
            f"({n / sample.seconds:.0f} req/s)",
            flush=True,
        )
    return results


def chart(result: dict[str, object], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no chart")
        return
    scenarios = result["scenarios"]
    assert isinstance(scenarios, list)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(6 * len(scenarios), 4.5))
    for axis, scenario in zip(axes, scenarios, strict=True):
        rows = scenario["rows"]
        names = [row["peer"] for row in rows]
        values = [row["efficiency"] or row["rps"] for row in rows]
        colors = ["#d62728" if name.startswith("afetch") else "#7f7f7f" for name in names]
        axis.barh(names, values, color=colors)
        axis.invert_yaxis()
        metric = "efficiency (ideal / wall)" if rows[0]["efficiency"] else "requests per second"
        axis.set_title(f"{scenario['name']}\nN={scenario['n']}, C={scenario['c']}: {metric}")
        axis.xaxis.set_major_locator(plt.MaxNLocator(5))
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:g}", va="center", fontsize=8)
        axis.margins(x=0.2)
    fig.suptitle(f"afetch bench, {result['date']}, {result['machine']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"chart: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", default="10000,1000000", help="list sizes for afetch's RSS")
    parser.add_argument("--quick", action="store_true", help="2 rounds, RSS at 1e4 and 1e5")
    parser.add_argument("--chart-only", action="store_true", help="redraw from results.json")
    args = parser.parse_args()
    if args.chart_only:
        chart(json.loads((OUT / "results.json").read_text()), OUT / "chart.png")
        return
    if args.quick:
        args.rounds, args.memory = 2, "10000,100000"
    fresh_bytecode()
    OUT.mkdir(exist_ok=True)
    scenarios = [
        Scenario("tiny responses", 20_000, 100, "/item"),
        Scenario("50 ms responses", 2_000, 100, "/delay", ideal=1.0),
        Scenario("50 ms responses, wide", 20_000, 1000, "/delay", ideal=1.0),
    ]
    with (
        tempfile.TemporaryDirectory(prefix="afetch-bench-") as tmp,
        servers(Path(tmp)) as (
            tiny,
            delay,
            tiny_name,
            delay_name,
        ),
    ):
        workdir = Path(tmp)
        machine = f"{platform.platform()}, {os.cpu_count()} cores"
        print(f"servers: tiny {tiny_name}; 50 ms {delay_name}\nmachine: {machine}")
        results = []
        for scenario in scenarios:
            base = tiny if scenario.path == "/item" else delay
            run_scenario(workdir, base, scenario, args.rounds)
            entry: dict[str, object] = {
                "name": scenario.name, "n": scenario.n, "c": scenario.c,
                "ideal_s": scenario.ideal, "rows": report(scenario),
            }  # fmt: skip
            if scenario.path == "/item":
                entry["ceiling"] = wrk_ceiling(tiny, scenario.c)
                print(f"  wrk ceiling (not a list fetcher): {entry['ceiling']} req/s")
            results.append(entry)
        start = startup(tiny)
        mem = memory(workdir, tiny, [int(x) for x in args.memory.split(",")], 100)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        "servers": {"tiny": tiny_name, "delay": delay_name},
        "rounds": args.rounds,
        "scenarios": results,
        "startup_ms": start,
        "memory_mib": mem,
    }
    (OUT / "results.json").write_text(json.dumps(result, indent=2))
    chart(result, OUT / "chart.png")
    print(f"written: {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
