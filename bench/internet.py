"""The simulated internet: thousands of distinct hosts, slow DNS, dead addresses.

Builds a private network on this machine and runs afetch and its peers in it,
in alternating order, in one run:

- a network namespace of its own (``unshare -n -m``, so root) where every
  127.x.y.z is a host and ``/etc/resolv.conf`` / ``/etc/hosts`` are ours;
- a DNS server (tests/dnsserver.py) on 127.0.0.53 that answers every name
  after ``--dns-delay`` (30 ms): ``hN.live.test`` and ``sN.live.test`` on 250
  addresses nginx listens on, ``hN.nx.test`` NXDOMAIN, ``hN.refused.test`` an
  address nothing listens on, ``hN.hole.test`` an address that swallows SYNs
  (a listener whose accept queue is full);
- nginx (one worker) on port 80 and 443 of those 250 addresses with a
  certificate for ``*.live.test`` from a private CA made for the run,
  ``/think`` answering after 50 ms (echo module), and stub_status so the run
  can count the connections each peer opened.

Workloads: 10 000 distinct hosts over http and https at -c 100 and -c 500;
10 000 URLs over 100 https hosts; the https one with 5 % NXDOMAIN, 2 %
refused and 1 % black-holed hosts (5 s limit); afetch's peak RSS with 10 000
and 100 000 distinct hosts. Every peer makes one attempt per URL with the
same time limit and trusts the CA through SSL_CERT_FILE / CURL_CA_BUNDLE.

    python bench/internet.py              # everything, one round (~15 min)
    python bench/internet.py --rounds 3 --only '100 https hosts,dead'
    python bench/internet.py --peers 'afetch,curl -Z'   # only these peers
    python bench/internet.py --shell 'afetch -i ... '   # a command inside the network

Writes bench/out/internet.json and bench/out/internet.png; ``make bench-internet``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
BIN = Path(sys.executable).parent
INSIDE = "BENCH_INTERNET_INSIDE"
ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")

DNS_ADDRESS = "127.0.0.53"
LIVE = [f"127.1.0.{i}" for i in range(1, 251)]  # nginx listens here
REFUSED = "127.2.0.{}"  # nothing listens here
HOLE = "127.3.0.1"  # accept queue full: SYNs are swallowed
STATUS = "127.0.0.1:8081"
THINK = 0.05

NGINX_CONF = """
load_module {echo};
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log crit;
worker_rlimit_nofile 65536;
events {{ worker_connections 60000; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    ssl_certificate {dir}/server.pem;
    ssl_certificate_key {dir}/server.key;
    ssl_session_cache shared:SSL:50m;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    server {{
{listen}
        location /think {{ default_type text/plain; echo_sleep {think}; echo "ok"; }}
        location / {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
    server {{
        listen {status};
        location / {{ stub_status; }}
    }}
}}
"""


def answers(name: str) -> list[str] | None:
    """The simulated internet's zone: the first label's number picks the address."""
    label, _, zone = name.partition(".")
    number = int(label[1:]) if label[1:].isdigit() else 0
    if zone == "live.test":
        return [LIVE[number % len(LIVE)]]
    if zone == "refused.test":
        return [REFUSED.format(number % 250 + 1)]
    if zone == "hole.test":
        return [HOLE]
    return None


# -- the network -----------------------------------------------------------------


def enter_namespace() -> None:
    """Re-run this script in a new network and mount namespace (needs root)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        sys.exit("bench/internet.py needs root and unshare(1) to build its private network")
    env = {**os.environ, INSIDE: "1"}
    command = ["unshare", "-n", "-m", "--", sys.executable, __file__, *sys.argv[1:]]
    sys.exit(subprocess.run(command, env=env, check=False).returncode)


def private_resolver(workdir: Path) -> None:
    """Our DNS server and an /etc/hosts without the test names, for every peer."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    resolv, hosts = workdir / "resolv.conf", workdir / "hosts"
    resolv.write_text(f"nameserver {DNS_ADDRESS}\n")  # the C library's timeouts and retries
    hosts.write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    for ours, system in ((resolv, "/etc/resolv.conf"), (hosts, "/etc/hosts")):
        subprocess.run(["mount", "--bind", str(ours), system], check=True)


def certificates(workdir: Path) -> Path:
    """A private CA and a *.live.test certificate (ECDSA P-256); the CA's path."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=workdir)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=afetch bench CA",
    )
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=live.test")
    (workdir / "ext.cnf").write_text("subjectAltName=DNS:*.live.test,DNS:live.test\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return workdir / "ca.pem"


def wait_for(address: tuple[str, int], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(address) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answers on {address}")


@contextlib.contextmanager
def black_hole() -> Iterator[None]:
    """HOLE:80 and :443 take SYNs and never answer them."""
    sockets = []
    for port in (80, 443):
        listener = socket.socket()
        listener.bind((HOLE, port))
        listener.listen(0)
        sockets.append(listener)
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((HOLE, port))
            sockets.append(filler)
    try:
        yield
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def internet(workdir: Path, dns_delay: float, http2: bool = False) -> Iterator[str]:
    """DNS server, nginx and the black hole, running; yields nginx's version.
    ``http2``: nginx offers h2 by ALPN on 443 (curl and pyreqwest then take it)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists() or not ECHO_MODULE.exists():
        sys.exit("needs nginx and its echo module: apt-get install nginx libnginx-mod-http-echo")
    private_resolver(workdir)
    certificates(workdir)
    listen = "\n".join(
        f"        listen {address}:80 backlog=4096;\n"
        f"        listen {address}:443 ssl{' http2' if http2 else ''} backlog=4096;"
        for address in LIVE
    )
    conf = workdir / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(echo=ECHO_MODULE, dir=workdir, listen=listen, think=THINK, status=STATUS)
    )
    dns = [sys.executable, __file__, "--dns-server", str(dns_delay)]
    started = [
        subprocess.Popen(dns, stderr=subprocess.DEVNULL),
        subprocess.Popen([nginx, "-c", str(conf), "-p", str(workdir)]),
    ]
    SERVERS[:] = [process.pid for process in started]
    try:
        wait_for((LIVE[0], 443))
        time.sleep(0.3)  # the DNS server binds while nginx starts
        with black_hole():
            version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr
            yield version.strip().removeprefix("nginx version: ")
    finally:
        for process in started:
            process.terminate()
            process.wait(10)


SERVERS: list[int] = []  # the DNS server's and nginx master's pids


def servers_cpu() -> float:
    """CPU seconds the DNS server and nginx (master and worker) have used so far.

    They share the two cores with the peer being measured: a peer that needs
    more TLS handshakes than the machine can do in the ideal time is bound by
    the sum, not by its own CPU alone.
    """
    pids = set(SERVERS)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) in SERVERS:
                pids.add(int(stat.parent.name))
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def accepted_connections() -> int:
    with urllib.request.urlopen(f"http://{STATUS}/", timeout=5) as response:
        text = response.read().decode()
    return int(text.splitlines()[2].split()[0])  # "server accepts handled requests" / numbers


# -- workloads and peers ---------------------------------------------------------


@dataclass
class Sample:
    wall: float
    cpu: float
    server_cpu: float
    rss_mib: float
    records: int
    ok: int
    connections: int


@dataclass
class Workload:
    name: str
    scheme: str
    n: int
    c: int
    hosts: int | None = None  # None: every URL its own host
    dead: bool = False
    timeout: int = 30
    path: str = "/think"
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def url(self, i: int) -> str:
        if self.hosts is not None:
            return f"{self.scheme}://s{i % self.hosts}.live.test{self.path}/{i}"
        zone = "live"
        if self.dead:  # per 100: 5 NXDOMAIN, 2 refused, 1 black hole
            zone = {0: "hole", 1: "refused", 2: "refused"}.get(
                i % 100, "nx" if i % 100 < 8 else zone
            )
        return f"{self.scheme}://h{i}.{zone}.test{self.path}/{i}"

    @property
    def ideal(self) -> float:
        """Seconds with perfect overlap: each request's DNS + think time, C at once."""
        if self.hosts is not None:
            return self.n * THINK / self.c + DNS_DELAY
        live = self.n * (1 - 0.08) if self.dead else self.n
        work = live * (DNS_DELAY + THINK)
        if self.dead:
            work += self.n * 0.07 * DNS_DELAY + self.n * 0.01 * (DNS_DELAY + self.timeout)
        return work / self.c


DNS_DELAY = 0.03


def write_lists(workdir: Path, workload: Workload) -> tuple[Path, Path]:
    stem = re.sub(r"\W+", "-", workload.name)
    urls, curl_config = workdir / f"{stem}.txt", workdir / f"{stem}.curl"
    with urls.open("w") as plain, curl_config.open("w") as config:
        for i in range(workload.n):
            url = workload.url(i)
            plain.write(url + "\n")
            config.write(f'url = "{url}"\noutput = "/dev/null"\n')
    return urls, curl_config


def afetch_command(urls: Path, workload: Workload, *extra: str) -> list[str]:
    return [
        str(BIN / "afetch"),
        "-i",
        str(urls),
        "-c",
        str(workload.c),
        "-t",
        f"{workload.timeout}s",
        "--retries",
        "0",
        "--no-progress",
        "--no-summary",
        "--exit-zero",
        *extra,
    ]


def peers(workload: Workload, urls: Path, curl_config: Path) -> dict[str, list[str]]:
    python, c = str(BIN / "python"), str(workload.c)
    script = str(HERE / "peers" / "bounded_workers.py")
    return {
        "afetch": afetch_command(urls, workload),
        "afetch --workers 1": afetch_command(urls, workload, "--workers", "1"),
        "afetch --http2": afetch_command(urls, workload, "--http2"),
        "afetch --http-client aiohttp": afetch_command(urls, workload, "--http-client", "aiohttp"),
        "curl -Z": [
            "curl",
            "--parallel",
            "--parallel-max",
            c,
            "-s",
            "--no-progress-meter",  # curl 7.88 draws its parallel meter despite -s
            "-m",
            str(workload.timeout),
            "-w",
            "%{json}\\n",
            "-K",
            str(curl_config),
        ],
        "aiohttp workers": [python, script, c],
        "aiohttp workers + aiodns": [python, script, c, "aiodns"],
        "aiohttp gather-all": [python, str(HERE / "peers" / "gather_all.py"), c],
        **(
            {"bounded workers + pyreqwest": [python, str(HERE / "peers" / "reqwest_workers.py"), c]}
            if importlib.util.find_spec("pyreqwest") is not None
            else {}
        ),
    }


def is_ok(line: bytes) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    if "ok" in record:
        return record["ok"] is True
    return 200 in (record.get("status"), record.get("response_code"))


def measure(command: list[str], urls: Path, out: Path, env: dict[str, str]) -> Sample:
    """One run: wall; CPU and peak RSS of the command alone; records; nginx's accepts.

    The command runs under /usr/bin/time, a small C process: a child forked
    straight from this script would report at least this script's own peak
    RSS (Linux carries the parent's high-water mark across fork and exec).
    """
    before, server_before = accepted_connections(), servers_cpu()
    usage = out.with_suffix(".time")
    reads_stdin = command[0].endswith("python")
    with out.open("wb") as sink, urls.open("rb") as source:
        started = time.perf_counter()
        subprocess.run(
            ["/usr/bin/time", "-o", str(usage), "-f", "%M %U %S", *command],
            stdin=source if reads_stdin else subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.DEVNULL,
            env=env,
            check=False,
        )
        wall = time.perf_counter() - started
    time.sleep(0.2)  # nginx counts the last accepts
    rss_kib, user, system = usage.read_text().split()[-3:]
    with out.open("rb") as handle:
        lines = [line for line in handle if line.startswith(b"{")]
    return Sample(
        wall=wall,
        cpu=float(user) + float(system),
        server_cpu=servers_cpu() - server_before,
        rss_mib=int(rss_kib) / 1024,
        records=len(lines),
        ok=sum(map(is_ok, lines)),
        connections=accepted_connections() - before,
    )


def run_workload(
    workdir: Path, workload: Workload, rounds: int, env: dict[str, str], only_peers: list[str]
) -> None:
    urls, curl_config = write_lists(workdir, workload)
    table = peers(workload, urls, curl_config)
    if only_peers:
        table = {name: command for name, command in table.items() if name in only_peers}
    env = {**env, "BENCH_TIMEOUT": str(workload.timeout)}
    print(
        f"\n== {workload.name}: N={workload.n}, C={workload.c}, ideal {workload.ideal:.1f} s ==",
        flush=True,
    )
    for round_no in range(rounds):
        order = list(table) if round_no % 2 == 0 else list(reversed(table))
        for name in order:
            sample = measure(table[name], urls, workdir / "out.jsonl", env)
            workload.samples.setdefault(name, []).append(sample)
            print(
                f"  {name:<30} wall {sample.wall:6.2f}s cpu {sample.cpu:6.2f}s "
                f"servers {sample.server_cpu:6.2f}s "
                f"rss {sample.rss_mib:6.1f} MiB ok {sample.ok}/{sample.records} "
                f"connections {sample.connections}",
                flush=True,
            )


def report(workload: Workload) -> dict[str, object]:
    base = statistics.median(s.wall for s in workload.samples["afetch"])
    print(f"\n{workload.name}: N={workload.n}, C={workload.c}, ideal {workload.ideal:.1f} s")
    print(
        "| peer | wall s | afetch wall / peer | of ideal | CPU s | CPU ms/req | servers' CPU s "
        "| peak RSS MiB | ok | connections |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name, samples in workload.samples.items():
        wall = statistics.median(s.wall for s in samples)
        row = {
            "peer": name,
            "wall_s": round(wall, 2),
            "afetch_ratio": round(base / wall, 2),
            "efficiency": round(workload.ideal / wall, 2),
            "cpu_s": round(statistics.median(s.cpu for s in samples), 2),
            "cpu_ms_per_request": round(
                statistics.median(s.cpu for s in samples) * 1000 / max(workload.n, 1), 3
            ),
            "server_cpu_s": round(statistics.median(s.server_cpu for s in samples), 2),
            "rss_mib": round(max(s.rss_mib for s in samples), 1),
            "ok": samples[-1].ok,
            "records": samples[-1].records,
            "connections": samples[-1].connections,
        }
        rows.append(row)
        print(
            f"| {name} | {wall:.2f} | {row['afetch_ratio']:.2f} | {row['efficiency']:.2f} "
            f"| {row['cpu_s']} | {row['cpu_ms_per_request']} | {row['server_cpu_s']} "
            f"| {row['rss_mib']} "
            f"| {row['ok']}/{row['records']} "
            f"| {row['connections']} |"
        )
    return {
        "name": workload.name,
        "n": workload.n,
        "c": workload.c,
        "ideal_s": round(workload.ideal, 2),
        "rows": rows,
    }


def memory(workdir: Path, sizes: list[int], env: dict[str, str]) -> dict[str, float]:
    """afetch's peak RSS with N distinct hosts, one plain request each."""
    results = {}
    print("\nmemory: afetch, distinct http hosts, -c 500, no think time")
    for n in sizes:
        workload = Workload(f"memory {n}", "http", n, 500, path="/ok")
        urls, _ = write_lists(workdir, workload)
        sample = measure(afetch_command(urls, workload), urls, workdir / "out.jsonl", env)
        results[str(n)] = round(sample.rss_mib, 1)
        print(
            f"  N={n:>7}: peak RSS {sample.rss_mib:6.1f} MiB, wall {sample.wall:6.1f}s, "
            f"ok {sample.ok}",
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
    workloads = result["workloads"]
    assert isinstance(workloads, list)
    columns = 3
    rows_n = -(-len(workloads) // columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(6 * columns, 3.6 * rows_n), squeeze=False)
    for axis in axes.flat[len(workloads) :]:
        axis.axis("off")
    for axis, workload in zip(axes.flat, workloads, strict=False):
        names = [row["peer"] for row in workload["rows"]]
        values = [row["wall_s"] for row in workload["rows"]]
        colors = ["#d62728" if name.startswith("afetch") else "#7f7f7f" for name in names]
        axis.barh(names, values, color=colors)
        axis.axvline(workload["ideal_s"], color="#2ca02c", linestyle="--", linewidth=1)
        axis.invert_yaxis()
        axis.set_title(f"{workload['name']}: wall s (dashed: ideal)", fontsize=10)
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:g}", va="center", fontsize=8)
        axis.margins(x=0.2)
    fig.suptitle(
        f"afetch in a simulated internet, {result['date']}, {result['machine']}", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"chart: {path}")


WORKLOADS = [
    Workload("10k hosts http -c 100", "http", 10_000, 100),
    Workload("10k hosts https -c 100", "https", 10_000, 100),
    Workload("10k hosts http -c 500", "http", 10_000, 500),
    Workload("10k hosts https -c 500", "https", 10_000, 500),
    Workload("100 https hosts -c 100", "https", 10_000, 100, hosts=100),
    Workload("dead hosts https -c 100", "https", 10_000, 100, dead=True, timeout=5),
]


def main() -> None:
    global DNS_DELAY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--only", help="run the workloads whose name contains one of these (comma-separated)"
    )
    parser.add_argument("--peers", default="", help="only these peers (comma-separated names)")
    parser.add_argument(
        "--http2-server", action="store_true", help="nginx offers h2 on https (ALPN)"
    )
    parser.add_argument(
        "--memory", default="10000,100000", help="host counts for peak RSS; '' none"
    )
    parser.add_argument("--dns-delay", type=float, default=DNS_DELAY)
    parser.add_argument("--shell", help="run this shell command inside the network instead")
    parser.add_argument("--chart-only", action="store_true", help="redraw from internet.json")
    parser.add_argument("--dns-server", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    DNS_DELAY = args.dns_delay
    if args.chart_only:
        chart(json.loads((OUT / "internet.json").read_text()), OUT / "internet.png")
        return
    if args.dns_server is not None:
        sys.path.insert(0, str(ROOT / "tests"))
        from dnsserver import serve_forever

        serve_forever(answers, DNS_ADDRESS, 53, args.dns_server)
        return
    if os.environ.get(INSIDE) != "1":
        enter_namespace()
    import compileall  # a stale bytecode cache costs every start 60-80 ms (bench/run.py)

    compileall.compile_dir(ROOT / "src", quiet=1)
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="afetch-internet-") as tmp:
        workdir = Path(tmp)
        with internet(workdir, args.dns_delay, args.http2_server) as server:
            ca = str(workdir / "ca.pem")
            env = {
                **os.environ,
                "SSL_CERT_FILE": ca,
                "CURL_CA_BUNDLE": ca,
                "PATH": f"{BIN}:{os.environ['PATH']}",
            }
            if args.shell:
                sys.exit(subprocess.run(args.shell, shell=True, env=env, check=False).returncode)
            machine = f"{platform.platform()}, {os.cpu_count()} cores"
            print(
                f"server: {server} (1 worker), DNS delay {args.dns_delay * 1000:.0f} ms\n"
                f"machine: {machine}",
                flush=True,
            )
            wanted = args.only.split(",") if args.only else [""]
            chosen = [w for w in WORKLOADS if any(part in w.name for part in wanted)]
            only_peers = [name for name in args.peers.split(",") if name]
            results = []
            for workload in chosen:
                run_workload(workdir, workload, args.rounds, env, only_peers)
                results.append(report(workload))
            sizes = [int(x) for x in args.memory.split(",") if x]
            mem = memory(workdir, sizes, env) if sizes else {}
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        "server": server,
        "dns_delay_ms": args.dns_delay * 1000,
        "rounds": args.rounds,
        "workloads": results,
        "memory_mib": mem,
    }
    stem = "internet" if not (args.only or args.peers) else "internet-partial"
    if args.http2_server:
        stem = "internet-h2"
    (OUT / f"{stem}.json").write_text(json.dumps(result, indent=2))
    if results:
        chart(result, OUT / f"{stem}.png")


if __name__ == "__main__":
    main()
