"""What Prometheus metrics cost: the same runs with ``CHRONOLOG_METRICS`` on and off.

From the repository root:

    .venv/bin/python -m bench.bench_metrics [--metrics both] [--rounds 3] \
        [--latency-runs 100] [--throughput-runs 3000]

Each round starts a fresh embedded cluster per setting (``chronolog up`` with its
scheduler, plus worker processes, as ``bench_runs`` does) and measures:
- latency: a no-op shell job triggered over HTTP one run at a time (1 worker, 2 slots);
  trigger -> start from the run's own timestamps;
- throughput: N no-op python runs appended to the log at once, 2 workers x 4 slots;
  runs completed per second.
Both also report the CPU every process of the cluster spent per run (user + system,
from /proc, the reaped job processes included), which a shared machine disturbs less
than wall time. ``both`` alternates on and off within each round (on first in odd
rounds, off first in even ones) so a change in the machine's load hits both alike; the
load average is recorded around each measurement. Writes bench/results/metrics.json
(``--results DIR`` elsewhere).

    .venv/bin/python -m bench.bench_metrics --hooks-only [--hook-runs 200000]

measures what the hooks themselves cost per run, without a cluster: one run's worth of
hot-path observations (start, end, outcome, two appends, a projector batch and a
scheduler decision per run), CPU time per run with metrics on and off, in a process of
its own (in-memory values, as a standalone role) and in one writing to a multiprocess
directory (as ``chronolog up``'s processes do). Writes bench/results/metrics-hooks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from bench.auth import admin_headers  # noqa: E402
from bench.bench_runs import RESULTS, at, cluster, ms, wait  # noqa: E402
from chronolog.settings import load_settings  # noqa: E402
from chronolog.wiring import open_event_log  # noqa: E402
from events.codec import EventCodec  # noqa: E402
from events.ids import new_run_id  # noqa: E402
from events.model import Event, RunRequested, to_millis  # noqa: E402
from metrics.exposition import MULTIPROC_ENV  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
NOOP_PYTHON = {
    "name": "noop",
    "type": "python",
    "function": "tests.jobs.sample:noop",
    "concurrency_policy": "allow",
    "max_concurrency": 10_000,
}


def cluster_cpu_seconds() -> float:
    """CPU seconds of every live descendant of this process, with the children each reaped."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = sum(int(f) for f in fields[11:15]) / TICKS
    ours = {os.getpid()}
    grew = True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in ours} - ours
        grew = bool(found)
        ours |= found
    return sum(times[pid] for pid in ours if pid != os.getpid())


def load() -> float:
    return round(os.getloadavg()[0], 2)


def latency(runs: int, backend: dict[str, str]) -> dict[str, Any]:
    to_start: list[float] = []
    with (
        cluster(1, 2, backend) as (url, data, _, _),
        httpx.Client(base_url=url, timeout=30, headers=admin_headers(data)) as api,
    ):
        api.post("/api/jobs", json={"name": "noop", "type": "shell", "command": "true"})
        load_before, cpu_before = load(), cluster_cpu_seconds()
        for _ in range(runs):
            run_id = api.post("/api/jobs/noop/trigger").json()["run_id"]
            run: dict[str, Any] = {}

            def done(run_id: str = run_id, run: dict[str, Any] = run) -> bool:
                run.update(api.get(f"/api/runs/{run_id}").json())
                return bool(run["status"] == "completed")

            wait(done, 30, 0.002)
            to_start.append((at(run["started_at"]) - at(run["requested_at"])).total_seconds())
        cpu = cluster_cpu_seconds() - cpu_before
    return {
        "runs": runs,
        "trigger_to_start": ms([s * 1000 for s in to_start]),
        "cpu_ms_per_run": round(cpu / runs * 1000, 3),
        "load_average_1m": [load_before, load()],
    }


def throughput(runs: int, backend: dict[str, str]) -> dict[str, Any]:
    with (
        cluster(2, 4, backend) as (url, data, _, _),
        httpx.Client(base_url=url, timeout=60, headers=admin_headers(data)) as api,
    ):
        job = api.post("/api/jobs", json=NOOP_PYTHON).json()
        codec = EventCodec.default()
        log = open_event_log(load_settings(backend, data_dir=data))
        now = to_millis(datetime.now(UTC))
        events = []
        for _ in range(runs):
            run_id = new_run_id()
            events.append(
                Event(
                    RunRequested(trigger="backfill"),
                    now,
                    "bench",
                    job_id=job["id"],
                    run_id=run_id,
                    attempt=1,
                    correlation_id=run_id,
                )
            )
        load_before, cpu_before = load(), cluster_cpu_seconds()
        began = time.perf_counter()
        log.append([(e.key, codec.encode(e)) for e in events])
        log.close()

        def completed() -> int:
            params: dict[str, str | int] = {"job_id": "noop", "status": "completed", "limit": 1}
            total: int = api.get("/api/runs", params=params).json()["total"]
            return total

        wait(lambda: completed() == runs, 1800, 0.2)
        elapsed = time.perf_counter() - began
        cpu = cluster_cpu_seconds() - cpu_before
    return {
        "runs": runs,
        "seconds": round(elapsed, 3),
        "runs_per_s": round(runs / elapsed, 1),
        "cpu_ms_per_run": round(cpu / runs * 1000, 3),
        "load_average_1m": [load_before, load()],
    }


ONE_RUN = """
import sys, time
from prometheus_client import CollectorRegistry
from metrics.hooks import NO_METRICS
from metrics.prometheus import PrometheusMetrics

def one_run(m):
    m.run_started("default", 0.012)
    m.appended(0.0011, 1)
    m.run_ended()
    m.run_finished("noop", "default", "succeeded", 0.002)
    m.appended(0.0012, 1)
    m.applied(4)
    m.decided({"RunQueued": 1})

runs = int(sys.argv[1])
for name, metrics in (("off", NO_METRICS), ("on", PrometheusMetrics(CollectorRegistry()))):
    one_run(metrics)  # the first observation makes the labelled series
    began = time.process_time()
    for _ in range(runs):
        one_run(metrics)
    print(name, (time.process_time() - began) / runs * 1e6)
"""


def hook_cost(runs: int) -> dict[str, dict[str, float]]:
    """CPU microseconds per run of the hot-path observations, on and off."""
    found = {}
    with tempfile.TemporaryDirectory() as directory:
        for kind, extra in (("in_memory", {}), ("multiprocess", {MULTIPROC_ENV: directory})):
            environment = {**os.environ, "PYTHONPATH": str(REPO), **extra}
            done = subprocess.run(
                [sys.executable, "-c", ONE_RUN, str(runs)],
                env=environment,
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
            lines = (line.split() for line in done.stdout.splitlines())
            found[kind] = {name: round(float(value), 2) for name, value in lines}
    return found


def order(setting: str, round_number: int) -> list[str]:
    if setting != "both":
        return [setting]
    return ["on", "off"] if round_number % 2 == 0 else ["off", "on"]


def summary(rounds: list[dict[str, Any]], setting: str) -> dict[str, Any]:
    """Medians over the rounds for one setting."""
    mine = [r for r in rounds if r["metrics"] == setting]
    if not mine:
        return {}

    def median(kind: str, *path: str) -> float:
        values = []
        for r in mine:
            value: Any = r[kind]
            for part in path:
                value = value[part]
            values.append(float(value))
        return round(statistics.median(values), 3)

    return {
        "latency_trigger_to_start_p50_ms": median("latency", "trigger_to_start", "p50_ms"),
        "latency_trigger_to_start_p99_ms": median("latency", "trigger_to_start", "p99_ms"),
        "latency_cpu_ms_per_run": median("latency", "cpu_ms_per_run"),
        "throughput_runs_per_s": median("throughput", "runs_per_s"),
        "throughput_cpu_ms_per_run": median("throughput", "cpu_ms_per_run"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metrics", choices=["on", "off", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--throughput-runs", type=int, default=3000)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where metrics.json goes")
    parser.add_argument("--hooks-only", action="store_true", help="only the hooks' own cost")
    parser.add_argument("--hook-runs", type=int, default=200_000)
    args = parser.parse_args()
    if args.hooks_only:
        hooks = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "runs": args.hook_runs,
            "cpu_us_per_run": hook_cost(args.hook_runs),
            "load_average_1m": load(),
        }
        print(json.dumps(hooks, indent=2))
        path = args.results / "metrics-hooks.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(hooks, indent=2) + "\n")
        print(f"wrote {path}")
        return
    rounds = []
    for number in range(args.rounds):
        for setting in order(args.metrics, number):
            backend = {"CHRONOLOG_METRICS": setting}
            measured = {
                "round": number + 1,
                "metrics": setting,
                "latency": latency(args.latency_runs, backend),
                "throughput": throughput(args.throughput_runs, backend),
            }
            print(json.dumps(measured))
            rounds.append(measured)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "medians": {setting: summary(rounds, setting) for setting in ("on", "off")},
        "rounds": rounds,
    }
    print(json.dumps(result["medians"], indent=2))
    path = args.results / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
