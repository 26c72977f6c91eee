"""HTTP/1.1 against HTTP/2 on one host: tiny responses from a local nginx over TLS.

One nginx (one worker) listens with ``ssl http2``; peers fetch N tiny responses
at -c C, alternating in order, for several rounds: afetch (HTTP/1.1, its default),
afetch --http2, curl -Z --http1.1 and --http2, and the pyreqwest script (h2 by
ALPN). Wall, CPU per request (user + system of the peer) and the connections
nginx accepted (stub_status) are printed as a Markdown table.

    python bench/h2.py [--n 20000] [--c 100] [--rounds 3]

Needs nginx built with http_v2 and stub_status (Debian's is); uses the bench venv
(``make bench``) so pyreqwest is there.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BIN, HERE, free_port, fresh_bytecode, measure, start

CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log crit;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        location / {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{status};
        location / {{ stub_status; }}
    }}
}}
"""


def certificates(workdir: Path) -> None:
    """A private CA (ca.pem) and a certificate for 127.0.0.1 it signed (cert.pem, key.pem):
    rustls, as it should, refuses a self-signed end certificate."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=workdir)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=afetch bench CA")  # fmt: skip
    openssl("req", *curve, "-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (workdir / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "cert.pem", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip


def accepted(status: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{status}/", timeout=5) as answer:
        return int(answer.read().decode().split("\n")[2].split()[0])


def peers(urls: Path, curl_config: Path, ca: Path, c: int) -> dict[str, list[str]]:
    afetch = [str(BIN / "afetch"), "-i", str(urls), "-c", str(c), "--cacert", str(ca),
              "--no-progress", "--no-summary", "--exit-zero", "--workers", "1"]  # fmt: skip
    curl = ["curl", "--parallel", "--parallel-max", str(c), "-s", "--no-progress-meter",
            "--cacert", str(ca), "-w", "%{json}\\n", "-K", str(curl_config)]  # fmt: skip
    table = {
        "afetch (HTTP/1.1)": afetch,
        "afetch --http2": [*afetch, "--http2"],
        "curl -Z --http1.1": [*curl, "--http1.1"],
        "curl -Z --http2": [*curl, "--http2"],
    }
    if importlib.util.find_spec("pyreqwest") is not None:
        table["pyreqwest workers (h2 by ALPN)"] = [
            str(BIN / "python"),
            str(HERE / "peers" / "reqwest_workers.py"),
            str(c),
        ]
    if not shutil.which("curl"):
        table = {name: command for name, command in table.items() if "curl" not in name}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--c", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    fresh_bytecode()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory(prefix="afetch-h2-") as tmp:
        workdir = Path(tmp)
        certificates(workdir)
        port, status = free_port(), free_port()
        (workdir / "nginx.conf").write_text(CONF.format(dir=workdir, port=port, status=status))
        server = start([nginx, "-c", str(workdir / "nginx.conf"), "-p", str(workdir)], port)
        try:
            urls, curl_config = workdir / "urls.txt", workdir / "urls.curl"
            with urls.open("w") as plain, curl_config.open("w") as config:
                for i in range(args.n):
                    url = f"https://127.0.0.1:{port}/ok/{i}"
                    plain.write(url + "\n")
                    config.write(f'url = "{url}"\noutput = "/dev/null"\n')
            table = peers(urls, curl_config, workdir / "ca.pem", args.c)
            env_ca = {"SSL_CERT_FILE": str(workdir / "ca.pem")}
            os.environ.update(env_ca)  # the pyreqwest script trusts SSL_CERT_FILE
            results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in table}
            for round_no in range(args.rounds):
                order = list(table) if round_no % 2 == 0 else list(reversed(table))
                for name in order:
                    before = accepted(status)
                    stdin = urls if "pyreqwest" in name else None
                    sample = measure(table[name], stdin, workdir / "out.jsonl")
                    time.sleep(0.2)
                    opened = accepted(status) - before - 1  # this count's own connection
                    results[name].append((sample.seconds, sample.cpu, opened))
                    print(f"  round {round_no + 1} {name:<32} {sample.seconds:6.2f}s "
                          f"cpu {sample.cpu:6.2f}s connections {opened} "
                          f"records {sample.records}", flush=True)  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"\n{args.n} tiny responses over TLS from one nginx, -c {args.c}, "
          f"medians of {args.rounds} rounds\n")  # fmt: skip
    print("| peer | wall s | CPU µs/request | connections |\n|---|---|---|---|")
    for name, samples in results.items():
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples) / args.n * 1e6
        conns = statistics.median(s[2] for s in samples)
        print(f"| {name} | {wall:.2f} | {cpu:.0f} | {conns:.0f} |")


if __name__ == "__main__":
    main()
