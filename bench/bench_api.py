"""Latency of ``POST /api/jobs`` (including read-your-writes) against ``chronolog up``.

    .venv/bin/python bench/bench_api.py [--requests 2000]

Starts ``chronolog up`` on a free port with a fresh data directory, warms up, then
sends requests one after another over a keep-alive connection and reports p50/p90/p99.
The latency includes the append (fsync), the projector applying the event, and the
read back. Writes bench/results/api.json.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from bench.auth import admin_headers  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("chronolog up did not become healthy")


def job(i: int) -> dict[str, object]:
    return {
        "name": f"bench-{i}",
        "type": "python",
        "function": "reports.generate_daily",
        "schedule": "0 9 * * *",
        "parameters": {"recipients": ["team@example.com"]},
        "tags": ["bench"],
    }


def measure(url: str, start: int, count: int, headers: dict[str, str]) -> list[float]:
    latencies = []
    with httpx.Client(base_url=url, headers=headers) as api:
        for i in range(start, start + count):
            began = time.perf_counter()
            response = api.post("/api/jobs", json=job(i))
            latencies.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 201, response.text
    return latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        command = [
            sys.executable,
            "-m",
            "chronolog",
            "up",
            "--api-port",
            str(port),
            "--data-dir",
            data_dir,
        ]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_healthy(url, time.monotonic() + 30)
            headers = admin_headers(data_dir)  # up's first token
            measure(url, 0, 100, headers)  # warm-up
            latencies = measure(url, 100, args.requests, headers)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
    results = {
        "requests": args.requests,
        "p50_ms": statistics.median(latencies),
        "p90_ms": percentile(latencies, 0.90),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "requests_per_s": args.requests / (sum(latencies) / 1000),
    }
    for name, value in results.items():
        print(f"{name:>16}: {value:,.1f}")
    out = Path(__file__).parent / "results" / "api.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
