"""Triggers per second through the HTTP API: one run per request vs. batches.

    .venv/bin/python -m bench.bench_trigger [--runs 3000] [--clients 1,8] [--batch 100,1000]
                                            [--source DIR]

Starts ``chronolog``'s API, projector and scheduler (no worker: runs end queued) on the
embedded defaults in a fresh data dir, makes a no-op shell job that allows any number of
runs at once, then requests ``--runs`` runs:
- ``single``: ``POST /api/jobs/{id}/trigger`` from each number of ``--clients`` threads
  (one connection each), reporting triggers/s and the latency of one trigger;
- ``batch``: ``POST /api/runs`` with each ``--batch`` size, one request at a time,
  reporting runs/s and the latency of one batch.
Then waits until the read model shows every run requested and reports how long the
projector and scheduler took to catch up after the last answer (the work an early
answer leaves behind). ``--source DIR`` serves from another checkout (e.g. ``git archive
main``) with this venv, to compare builds. Writes bench/results/trigger.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from bench.auth import OPEN_SERVER  # noqa: E402
from bench.bench_api import free_port, wait_healthy  # noqa: E402

JOB = {
    "name": "noop",
    "type": "shell",
    "command": "true",
    "concurrency_policy": "allow",
    "max_concurrency": 10_000,
}


@contextmanager
def server(data: Path, source: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOLOG_")}
    env["CHRONOLOG_LOG_LEVEL"] = "WARNING"
    env["PYTHONPATH"] = str(source)  # ahead of this checkout's editable install
    command = [sys.executable, "-c", OPEN_SERVER, str(data), str(port)]
    process = subprocess.Popen(command, cwd=source, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, time.monotonic() + 60)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def timed(latencies: list[float], call: Any) -> Any:
    began = time.perf_counter()
    response = call()
    latencies.append((time.perf_counter() - began) * 1000)
    assert response.status_code == 201, response.text
    return response


def singles(url: str, job_id: str, runs: int, clients: int) -> dict[str, Any]:
    latencies: list[float] = []

    def client_share(share: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as api:
            for _ in range(share):
                timed(latencies, lambda: api.post(f"/api/jobs/{job_id}/trigger", json={}))

    shares = [runs // clients + (1 if i < runs % clients else 0) for i in range(clients)]
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_share, shares))
    elapsed = time.perf_counter() - began
    return {"runs": runs, "clients": clients, "runs_per_s": runs / elapsed, **summary(latencies)}


def batches(url: str, job_id: str, runs: int, size: int) -> dict[str, Any]:
    latencies: list[float] = []
    body = {"runs": [{"job": job_id, "parameters": {"i": i}} for i in range(size)]}
    count = max(1, runs // size)
    began = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as api:
        for _ in range(count):
            timed(latencies, lambda: api.post("/api/runs", json=body))
    elapsed = time.perf_counter() - began
    return {"runs": count * size, "batch": size, "runs_per_s": count * size / elapsed,
            **summary(latencies)}  # fmt: skip


def caught_up(url: str, job_id: str, expected: int) -> float:
    """Seconds until the read model lists ``expected`` runs of the job, none pending."""
    began = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60) as api:
        while True:
            listed = api.get("/api/runs", params={"job_id": job_id, "limit": 1}).json()
            pending = api.get(
                "/api/runs", params={"job_id": job_id, "status": "pending", "limit": 1}
            ).json()
            if listed["total"] >= expected and pending["total"] == 0:
                return time.perf_counter() - began
            time.sleep(0.05)


def summary(latencies: list[float]) -> dict[str, float]:
    if len(latencies) < 2:
        return {"p50_ms": latencies[0], "p99_ms": latencies[0]}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50_ms": statistics.median(latencies), "p99_ms": cuts[98], "max_ms": max(latencies)}


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3000, help="runs per measurement")
    parser.add_argument("--clients", type=numbers, default=[1, 8], help="single-trigger threads")
    parser.add_argument("--batch", type=numbers, default=[100, 1000], help="batch sizes")
    parser.add_argument("--source", type=Path, default=REPO, help="the checkout to serve")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    results: dict[str, Any] = {"source": str(args.source), "single": [], "batch": []}
    with tempfile.TemporaryDirectory() as scratch, server(Path(scratch), args.source) as url:
        with httpx.Client(base_url=url, timeout=30) as api:
            made = api.post("/api/jobs", json=JOB)
            assert made.status_code == 201, made.text
            job_id = made.json()["id"]
        total = 0
        for clients in args.clients:
            result = singles(url, job_id, args.runs, clients)
            total += result["runs"]
            result["catch_up_s"] = caught_up(url, job_id, total)
            results["single"].append(result)
            print(json.dumps(result))
        for size in args.batch if (args.source / "api" / "triggers.py").exists() else []:
            result = batches(url, job_id, args.runs, size)
            total += result["runs"]
            result["catch_up_s"] = caught_up(url, job_id, total)
            results["batch"].append(result)
            print(json.dumps(result))
    args.results.mkdir(parents=True, exist_ok=True)
    name = "trigger.json" if args.source == REPO else "trigger-source.json"
    (args.results / name).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
