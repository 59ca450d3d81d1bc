"""What authentication costs on ``POST /api/jobs/{id}/trigger``.

    .venv/bin/python -m bench.bench_auth [--requests 500]

Starts two Chronologs side by side, each its own process with the same settings (API,
projector and scheduler, no worker, embedded defaults, a fresh data dir): one in open
mode (no token was ever made, loopback), one closed, called with an operator token.
Triggers a no-op shell job on each in turn, one request at a time, so both see the same
machine load; reports p50/p99 of each and the difference. The trigger is answered once
its event is durable (issue 11; before it, it waited for the scheduler's decision).
Writes bench/results/auth.json.
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
from contextlib import contextmanager
from pathlib import Path

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
    "max_concurrency": 1000,
}


@contextmanager
def server(scratch: Path, name: str) -> Iterator[str]:
    port = free_port()
    data = scratch / name
    command = [sys.executable, "-c", OPEN_SERVER, str(data), str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOLOG_")}
    env["CHRONOLOG_LOG_LEVEL"] = "WARNING"  # the scheduler child logs every decision
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, time.monotonic() + 60)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def close_with_tokens(api: httpx.Client) -> tuple[dict[str, str], dict[str, str]]:
    """An admin token made in open mode (which closes the server), then an operator token:
    (admin headers, operator headers)."""
    admin = api.post("/api/tokens", json={"name": "bench-admin", "role": "admin"})
    assert admin.status_code == 201, admin.text
    admin_headers = {"Authorization": f"Bearer {admin.json()['token']}"}
    body = {"name": "bench-op", "role": "operator"}
    made = api.post("/api/tokens", json=body, headers=admin_headers)
    assert made.status_code == 201, made.text
    assert api.get("/api/jobs").status_code == 401  # closed now
    return admin_headers, {"Authorization": f"Bearer {made.json()['token']}"}


def create_job(api: httpx.Client, headers: dict[str, str]) -> str:
    made = api.post("/api/jobs", json=JOB, headers=headers)
    assert made.status_code == 201, made.text
    job_id: str = made.json()["id"]
    return job_id


def trigger(api: httpx.Client, job_id: str, headers: dict[str, str]) -> float:
    began = time.perf_counter()
    response = api.post(f"/api/jobs/{job_id}/trigger", json={}, headers=headers)
    elapsed = (time.perf_counter() - began) * 1000
    assert response.status_code == 201, response.text
    return elapsed


def summary(latencies: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "p50_ms": statistics.median(latencies),
        "p90_ms": cuts[89],
        "p99_ms": cuts[98],
        "max_ms": max(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500, help="triggers per server")
    parser.add_argument("--warmup", type=int, default=50, help="triggers per server first")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    latencies: dict[str, list[float]] = {"open": [], "tokens": []}
    with (
        tempfile.TemporaryDirectory() as scratch,
        server(Path(scratch), "open") as open_url,
        server(Path(scratch), "tokens") as token_url,
        httpx.Client(base_url=open_url, timeout=30) as open_api,
        httpx.Client(base_url=token_url, timeout=30) as token_api,
    ):
        admin, operator = close_with_tokens(token_api)
        targets = {
            "open": (open_api, create_job(open_api, {}), {}),
            "tokens": (token_api, create_job(token_api, admin), operator),
        }
        for i in range(args.warmup + args.requests):
            for name, (api, job_id, headers) in targets.items():  # in turn: same load
                elapsed = trigger(api, job_id, headers)
                if i >= args.warmup:
                    latencies[name].append(elapsed)
    results = {
        "requests_per_server": args.requests,
        "open": summary(latencies["open"]),
        "tokens": summary(latencies["tokens"]),
    }
    results["cost_ms"] = {
        key: results["tokens"][key] - results["open"][key] for key in ("p50_ms", "p99_ms")
    }
    for name in ("open", "tokens", "cost_ms"):
        shown = ", ".join(f"{k} {v:,.2f}" for k, v in results[name].items())
        print(f"{name:>7}: {shown}")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "auth.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
