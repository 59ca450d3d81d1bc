"""Hook deliveries through ``chronolog up``: outcome -> delivery latency, each once.

    .venv/bin/python -m bench.bench_hooks [--runs 200] [--workers 1] [--concurrency 4]

Starts ``chronolog up`` on the embedded defaults in a fresh data dir (API, projector,
its scheduler child, which delivers hooks, and workers), with a local receiver allowed
by ``CHRONOLOG_HTTP_ALLOW``. Makes a no-op shell job whose ``on_success`` hook is the
receiver, signed with a secret, triggers ``--runs`` runs and waits until every run's
outcome was received. Reports the latency from each ``RunSucceeded`` (its
``occurred_at``) to the receiver reading the POST, the deliveries received per second,
and checks that every delivery came once with a valid signature and the right run link.
Writes bench/results/hooks.json.
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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from bench.auth import admin_headers  # noqa: E402
from bench.bench_api import free_port, wait_healthy  # noqa: E402
from notify.signing import verify  # noqa: E402

SECRET = "bench-hook-key"


class _Hook(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = time.time()
        with self.server.lock:
            self.server.received.append((received, dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True
    received: list[tuple[float, dict[str, str], bytes]]
    lock: threading.Lock


@contextmanager
def receiver() -> Iterator[_Receiver]:
    httpd = _Receiver(("127.0.0.1", 0), _Hook)
    httpd.received, httpd.lock = [], threading.Lock()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def up(data: Path, workers: int, concurrency: int) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOLOG_")}
    env.update(
        CHRONOLOG_LOG_LEVEL="WARNING",
        CHRONOLOG_HTTP_ALLOW="127.0.0.1",
        HOOK_KEY=SECRET,
        PYTHONPATH=str(REPO),
    )
    command = [sys.executable, "-m", "chronolog", "up", "--data-dir", str(data)]
    command += ["--api-port", str(port), "--workers", str(workers)]
    command += ["--concurrency", str(concurrency)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, time.monotonic() + 60)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)


def outcome_times(api: httpx.Client, run_ids: list[str]) -> dict[str, float]:
    """Run id -> when its RunSucceeded occurred (Unix seconds)."""
    times = {}
    for run_id in run_ids:
        events = api.get(f"/api/runs/{run_id}/events").json()["events"]
        [done] = [e for e in events if e["type"] == "RunSucceeded"]
        times[run_id] = datetime.fromisoformat(done["occurred_at"]).timestamp()
    return times


def measure(runs: int, workers: int, concurrency: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        receiver() as hooks,
        up(Path(tmp) / "data", workers, concurrency) as url,
    ):
        api = httpx.Client(base_url=url, headers=admin_headers(Path(tmp) / "data"), timeout=30)
        hook = {"url": f"http://127.0.0.1:{hooks.server_address[1]}/hook", "secret": "HOOK_KEY"}
        job: dict[str, Any] = {"name": "noop", "type": "shell", "command": "true"}
        job |= {"on_success": hook}
        job |= {"concurrency_policy": "allow", "max_concurrency": 10_000}
        assert api.post("/api/jobs", json=job).status_code == 201
        began = time.time()
        run_ids = [api.post("/api/jobs/noop/trigger").json()["run_id"] for _ in range(runs)]
        deadline = time.monotonic() + 120 + runs / 5
        while len(hooks.received) < runs:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(hooks.received)} of {runs} deliveries arrived")
            time.sleep(0.05)
        time.sleep(2)  # anything delivered twice would arrive by now
        finished = max(at for at, _, _ in hooks.received)
        done_at = outcome_times(api, run_ids)
        api.close()
    bodies = [(at, headers, json.loads(body), body) for at, headers, body in hooks.received]
    deliveries = [headers["Chronolog-Delivery"] for _, headers, _, _ in bodies]
    now = int(time.time())
    assert len(set(deliveries)) == len(deliveries) == runs, "a delivery came twice"
    assert all(verify(SECRET, h["Chronolog-Signature"], raw, now) for _, h, _, raw in bodies)
    assert all(b["run_url"] == f"{url}/api/runs/{b['run_id']}" for _, _, b, _ in bodies)
    latencies = sorted((at - done_at[b["run_id"]]) * 1000 for at, _, b, _ in bodies)
    return {
        "runs": runs,
        "workers": workers,
        "concurrency": concurrency,
        "deliveries": len(deliveries),
        "duplicates": len(deliveries) - len(set(deliveries)),
        "latency_ms": {
            "p50": round(statistics.median(latencies), 1),
            "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
            "max": round(latencies[-1], 1),
        },
        "deliveries_per_s": round(runs / (finished - began), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    result = measure(args.runs, args.workers, args.concurrency)
    print(json.dumps(result, indent=2))
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "hooks.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
