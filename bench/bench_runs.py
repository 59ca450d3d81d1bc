"""Runs end to end, on the embedded defaults or on Kafka + PostgreSQL + Redis.

From the repository root (as a module or as a file, both work):

    .venv/bin/python -m bench.bench_runs latency [--runs 200] [--backend B]
    .venv/bin/python -m bench.bench_runs throughput [--runs 10000] [--workers 2] \
        [--concurrency 4] [--trigger log|api] [--log-level L] [--backend B]
    .venv/bin/python -m bench.bench_runs lost [--repeat 5] [--backend B]
    .venv/bin/python -m bench.bench_runs path [--runs 200] [--log-level L] [--backend B]

B is ``embedded`` (the default: SQLite log, read model and leases in the data dir),
``production`` (a local Tansu broker, a durable PostgreSQL and Redis, started for the
run: see bench/stack.py) or ``both`` (embedded, then production, in one invocation).

latency: a no-op shell job triggered over HTTP one run at a time at low load; trigger ->
start and trigger -> completed from the run's own timestamps (requested_at, started_at,
finished_at), plus what the client waited. throughput: N RunRequested events for a no-op
python job appended at once to the cluster's event log (like a backfill; the Kafka topic
on production), or with ``--trigger api`` sent as ``POST /api/runs`` batches of 1,000 (as
the peers harness does), then the time until every run completed, with W worker
processes, and the CPU-seconds each process spent meanwhile (``cpu_s``: the API process
of ``chronolog up``, its projector, scheduler and dashboard children, the workers and
their job processes; ``cpu_ms_per_run``: all of them over N). lost:
a worker killed with SIGKILL mid-run; the time from the kill to RunLost and to the
re-run's start. path: trigger -> a job's first line step by step (see ``path``).

Writes bench/results/runs-<mode>.json (embedded), runs-<mode>-production.json, and with
``both`` also runs-<mode>-compare.json (the headline numbers side by side, against the
targets of issue 4: trigger -> start p99 <= 150 ms, >= 1,000 no-op runs/s). ``--results
DIR`` writes them elsewhere (e.g. for a smoke run).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psutil

from chronolog.settings import load_settings
from chronolog.wiring import open_event_log
from events.codec import EventCodec
from events.ids import new_run_id
from events.model import Event, RunRequested, to_millis

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from bench.auth import admin_headers  # noqa: E402
from bench.stack import Backend, backends, describe, selected  # noqa: E402

TARGETS: dict[str, tuple[str, str, float]] = {  # mode: (metric, comparison, goal) of issue 4
    "latency": ("trigger_to_start.p99_ms", "<=", 150.0),
    "throughput": ("runs_per_s", ">=", 1000.0),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting")
        time.sleep(interval)


def env(extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOLOG_")}
    # The measured jobs are shell no-ops: these workers run shell (off by default).
    return {**base, "PYTHONPATH": str(REPO), "CHRONOLOG_WORKER_JOB_TYPES": "python,shell", **extra}


@contextmanager
def cluster(
    workers: int, concurrency: int, extra_env: dict[str, str]
) -> Iterator[tuple[str, Path, list[subprocess.Popen[bytes]], subprocess.Popen[bytes]]]:
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        port = free_port()
        up = [
            sys.executable,
            "-m",
            "chronolog",
            "up",
            "--api-port",
            str(port),
            "--data-dir",
            str(data),
            "--workers",
            "0",
        ]
        processes = [
            subprocess.Popen(
                up,
                env=env(extra_env),
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ]
        url = f"http://127.0.0.1:{port}"
        wait(lambda: _healthy(url), 30, 0.1)
        worker = [
            sys.executable,
            "-m",
            "chronolog",
            "worker",
            "--data-dir",
            str(data),
            "--concurrency",
            str(concurrency),
        ]
        pool = [
            subprocess.Popen(
                worker,
                env=env(extra_env),
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        with httpx.Client(base_url=url, timeout=30, headers=admin_headers(data)) as api:
            wait(lambda: len(api.get("/api/workers").json()) == workers, 30)
        try:
            yield url, data, pool, processes[0]
        finally:
            for process in [*pool, *processes]:
                process.send_signal(signal.SIGTERM)
            for process in [*pool, *processes]:
                process.wait(timeout=60)


def _healthy(url: str) -> bool:
    try:  # the API answers; /api/health would be 503 until the workers below register
        return httpx.get(f"{url}/api/health/live", timeout=10).status_code == 200
    except httpx.TransportError:
        return False


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ms(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100)
    return {"p50_ms": statistics.median(values), "p99_ms": cuts[98], "max_ms": max(values)}


def latency(args: argparse.Namespace, backend: dict[str, str]) -> dict[str, Any]:
    to_start: list[float] = []
    to_done: list[float] = []
    client: list[float] = []
    with (
        cluster(1, 2, backend) as (url, data, _, _),
        httpx.Client(base_url=url, timeout=30, headers=admin_headers(data)) as api,
    ):
        api.post("/api/jobs", json={"name": "noop", "type": "shell", "command": "true"})
        for _ in range(args.runs):
            began = time.perf_counter()
            run_id = api.post("/api/jobs/noop/trigger").json()["run_id"]
            run: dict[str, Any] = {}

            def done(run_id: str = run_id, run: dict[str, Any] = run) -> bool:
                run.update(api.get(f"/api/runs/{run_id}").json())
                return bool(run["status"] == "completed")

            wait(done, 30, 0.002)
            client.append((time.perf_counter() - began) * 1000)
            requested = at(run["requested_at"])
            to_start.append((at(run["started_at"]) - requested).total_seconds() * 1000)
            to_done.append((at(run["finished_at"]) - requested).total_seconds() * 1000)
    return {
        "runs": args.runs,
        "trigger_to_start": ms(to_start),
        "trigger_to_completed": ms(to_done),
        "client_trigger_to_seen_completed": ms(client),
    }


def throughput(args: argparse.Namespace, backend: dict[str, str]) -> dict[str, Any]:
    with (
        cluster(args.workers, args.concurrency, {**backend, **_log_level(args)}) as (
            url,
            data,
            pool,
            up,
        ),
        httpx.Client(base_url=url, timeout=60, headers=admin_headers(data)) as api,
    ):
        job = api.post(
            "/api/jobs",
            json={"name": "noop", "type": "python", "function": "tests.jobs.sample:noop",
                  "concurrency_policy": "allow", "max_concurrency": None},
        ).json()  # fmt: skip
        if args.trigger == "log":
            trigger = _append_requests(backend, data, job["id"], args.runs)
        else:
            trigger = functools.partial(_post_requests, api, args.runs)
        cpu_before = cpu_seconds([up, *pool])
        began = time.perf_counter()
        trigger()

        def completed() -> int:
            total: int = api.get(
                "/api/runs", params={"job_id": "noop", "status": "completed", "limit": 1}
            ).json()["total"]
            return total

        wait(lambda: completed() == args.runs, 1800, 0.1)
        elapsed = time.perf_counter() - began
        cpu = {
            role: round(spent - cpu_before.get(role, 0.0), 2)
            for role, spent in cpu_seconds([up, *pool]).items()
        }
    return {
        "runs": args.runs,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "trigger": args.trigger,
        "seconds": elapsed,
        "runs_per_s": args.runs / elapsed,
        "cpu_s": cpu,
        "cpu_ms_per_run": round(sum(cpu.values()) * 1000 / args.runs, 3),
    }


def _log_level(args: argparse.Namespace) -> dict[str, str]:
    return {"CHRONOLOG_LOG_LEVEL": args.log_level} if args.log_level else {}


def backfill_request(job_id: str, payload: RunRequested, now: datetime) -> Event:
    """A new run of ``job_id`` requested as a backfill appends it (its own correlation)."""
    run_id = new_run_id()
    return Event(
        payload, now, "bench", job_id=job_id, run_id=run_id, attempt=1, correlation_id=run_id
    )


def _append_requests(
    backend: dict[str, str], data: Path, job_id: str, runs: int
) -> Callable[[], None]:
    """What appends ``runs`` RunRequested events to the cluster's own log at once."""
    codec = EventCodec.default()
    now = to_millis(datetime.now(UTC))
    events = [backfill_request(job_id, RunRequested(trigger="backfill"), now) for _ in range(runs)]
    records = [(event.key, codec.encode(event)) for event in events]

    def append() -> None:
        log = open_event_log(load_settings(backend, data_dir=data))
        log.append(records)
        log.close()

    return append


def _post_requests(api: httpx.Client, runs: int, batch: int = 1000) -> None:
    for start in range(0, runs, batch):
        items = [{"job": "noop"}] * min(batch, runs - start)
        api.post("/api/runs", json={"runs": items}).raise_for_status()


def cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> dict[str, float]:
    """CPU-seconds (user + system) spent so far, by role: ``api`` (the ``chronolog up``
    process), its children by command (``projector``, ``scheduler``, ``dashboard``),
    ``workers``, and ``job processes`` (the workers' children, live and exited)."""
    spent: dict[str, float] = {}

    def add(role: str, seconds: float) -> None:
        spent[role] = spent.get(role, 0.0) + seconds

    for process in processes:
        try:
            main = psutil.Process(process.pid)
            role = "workers" if "worker" in main.cmdline() else "api"
            times = main.cpu_times()
            add(role, times.user + times.system)
            if role == "workers":  # job processes that ended and were waited for
                add("job processes", times.children_user + times.children_system)
            for child in main.children(recursive=True):
                child_role = "job processes" if role == "workers" else _child_role(child)
                child_times = child.cpu_times()
                add(child_role, child_times.user + child_times.system)
        except psutil.NoSuchProcess:
            continue
    return spent


def _child_role(child: psutil.Process) -> str:
    command = child.cmdline()
    known = ("projector", "scheduler", "dashboard", "worker")
    return next((word for word in known if word in command), "other")


WARM_UP = 10  # runs before the measured ones (``path``)


def path(args: argparse.Namespace, backend: dict[str, str]) -> dict[str, Any]:
    """Where trigger -> start goes, step by step, at low load (one run at a time, 50 ms
    apart) for a job the API queues itself (no concurrency limit, like a task queue's
    task): the request until its ``RunRequested`` is stamped (HTTP, auth, validation,
    reading the job), then until ``RunStarted`` (the append, the push, the take, the
    start's durable append), then until the job's first line (the hand-off to a pool
    child); and what the client waited for the answer. Event times are the log's
    millisecond stamps; the machine's one clock serves all processes."""
    steps: dict[str, list[float]] = {
        "request_to_requested": [],
        "requested_to_started": [],
        "started_to_first_line": [],
        "trigger_to_first_line": [],
        "answer": [],
    }
    with (
        cluster(2, args.concurrency, {**backend, **_log_level(args)}) as (url, data, _, _),
        httpx.Client(base_url=url, timeout=30, headers=admin_headers(data)) as api,
    ):
        api.post(
            "/api/jobs",
            json={"name": "clock", "type": "python", "function": "bench.jobs:wall_clock",
                  "concurrency_policy": "allow", "max_concurrency": None},
        ).raise_for_status()  # fmt: skip
        for number in range(WARM_UP + args.runs):
            sent = time.time()
            answer = api.post("/api/jobs/clock/trigger")
            steps["answer"].append((time.time() - sent) * 1000)
            run_id = answer.json()["run_id"]
            wait(functools.partial(status_is, api, run_id, "completed"), 30, 0.002)
            run = api.get(f"/api/runs/{run_id}").json()
            if number < WARM_UP:  # each worker starts its pool on its first python run
                continue
            first_line = float(run["result"])
            requested = at(run["requested_at"]).timestamp()
            started = at(run["started_at"]).timestamp()
            steps["request_to_requested"].append((requested - sent) * 1000)
            steps["requested_to_started"].append((started - requested) * 1000)
            steps["started_to_first_line"].append((first_line - started) * 1000)
            steps["trigger_to_first_line"].append((first_line - sent) * 1000)
            time.sleep(0.05)
    return {"runs": args.runs, **{name: ms(values) for name, values in steps.items()}}


def rerun_started(api: httpx.Client, run_id: str) -> bool:
    run = api.get(f"/api/runs/{run_id}").json()
    return bool(run["attempt"] >= 2 and run["status"] == "running")


def status_is(api: httpx.Client, run_id: str, status: str) -> bool:
    return bool(api.get(f"/api/runs/{run_id}").json()["status"] == status)


def lost(args: argparse.Namespace, backend: dict[str, str]) -> dict[str, Any]:
    ttl = 5.0
    to_lost: list[float] = []
    to_rerun: list[float] = []
    extra = {**backend, "CHRONOLOG_RUN_LEASE_TTL": str(ttl)}
    with (
        cluster(2, 1, extra) as (url, data, pool, _),
        httpx.Client(base_url=url, headers=admin_headers(data)) as api,
    ):
        api.post(
            "/api/jobs",
            json={
                "name": "long",
                "type": "shell",
                "command": "sleep 2",
                "retries": 100,
                "retry_delay": 0,
            },
        )
        for _ in range(args.repeat):
            run_id = api.post("/api/jobs/long/trigger").json()["run_id"]
            run: dict[str, Any] = {}

            def running(run_id: str = run_id, run: dict[str, Any] = run) -> bool:
                run.update(api.get(f"/api/runs/{run_id}").json())
                return bool(run["status"] == "running")

            wait(running, 30, 0.01)
            pids = {w["id"]: w["pid"] for w in api.get("/api/workers").json()}
            killed_at = datetime.now(UTC)
            os.kill(pids[run["worker"]], signal.SIGKILL)
            wait(functools.partial(rerun_started, api, run_id), 60, 0.01)
            events = api.get(f"/api/runs/{run_id}/events").json()["events"]
            lost_at = next(at(e["occurred_at"]) for e in events if e["type"] == "RunLost")
            restarted = [at(e["occurred_at"]) for e in events if e["type"] == "RunStarted"][-1]
            to_lost.append((lost_at - killed_at).total_seconds())
            to_rerun.append((restarted - killed_at).total_seconds())
            survivor = next(w for w in pool if w.pid != pids[run["worker"]] and w.poll() is None)
            # Bring the pool back to two workers for the next round.
            pool.append(
                subprocess.Popen(
                    survivor.args,
                    env=env(extra),
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait(lambda: sum(1 for w in api.get("/api/workers").json() if w["alive"]) >= 2, 30)
            wait(functools.partial(status_is, api, run_id, "completed"), 30)
    return {
        "lease_ttl_s": ttl,
        "repeats": args.repeat,
        "kill_to_lost_s": {"median": statistics.median(to_lost), "max": max(to_lost)},
        "kill_to_rerun_started_s": {"median": statistics.median(to_rerun), "max": max(to_rerun)},
    }


MODES: dict[str, Callable[[argparse.Namespace, dict[str, str]], dict[str, Any]]] = {
    "latency": latency,
    "throughput": throughput,
    "lost": lost,
    "path": path,
}


def metric(result: dict[str, Any], path: str) -> float:
    value: Any = result
    for part in path.split("."):
        value = value[part]
    return float(value)


def target(mode: str, result: dict[str, Any]) -> dict[str, Any]:
    """Whether ``result`` meets issue 4's target for ``mode`` (none for ``lost``)."""
    if mode not in TARGETS:
        return {}
    path, comparison, goal = TARGETS[mode]
    value = metric(result, path)
    met = value <= goal if comparison == "<=" else value >= goal
    return {
        "target": {"metric": path, "goal": f"{comparison} {goal:g}", "value": value, "met": met}
    }


def headline(mode: str, result: dict[str, Any]) -> dict[str, float]:
    paths = {
        "latency": [
            "trigger_to_start.p50_ms",
            "trigger_to_start.p99_ms",
            "trigger_to_completed.p50_ms",
            "trigger_to_completed.p99_ms",
        ],
        "throughput": ["runs_per_s", "seconds"],
        "lost": ["kill_to_lost_s.median", "kill_to_rerun_started_s.median"],
        "path": [
            "request_to_requested.p50_ms",
            "requested_to_started.p50_ms",
            "started_to_first_line.p50_ms",
            "trigger_to_first_line.p50_ms",
            "trigger_to_first_line.p99_ms",
        ],
    }[mode]
    return {path: round(metric(result, path), 3) for path in paths}


def compare(mode: str, results: dict[Backend, dict[str, Any]]) -> dict[str, Any]:
    """The headline numbers of both backends side by side, and the targets they meet."""
    embedded = headline(mode, results["embedded"])
    production = headline(mode, results["production"])
    return {
        "mode": mode,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": {
            path: {
                "embedded": value,
                "production": production[path],
                "production_over_embedded": round(production[path] / value, 3) if value else None,
            }
            for path, value in embedded.items()
        },
        "targets": {backend: result.get("target") for backend, result in results.items()},
        "results": results,
    }


def result_name(mode: str, backend: Backend) -> str:
    return f"runs-{mode}.json" if backend == "embedded" else f"runs-{mode}-{backend}.json"


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=list(MODES))
    parser.add_argument("--runs", type=int)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--trigger", choices=["log", "api"], default="log")
    # The peers harness runs every process at WARNING (no log line per run), so can this.
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=["embedded", "production", "both"], default="embedded")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON files go")
    args = parser.parse_args()
    args.runs = args.runs or (200 if args.mode in ("latency", "path") else 10_000)
    results: dict[Backend, dict[str, Any]] = {}
    for backend in selected(args.backend):
        with backends(backend) as backend_env:
            stack = describe(backend_env)
            result = MODES[args.mode](args, backend_env)
        result.update(target(args.mode, result))
        result["stack"] = stack
        result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
        print(f"--- {backend}")
        print(json.dumps(result, indent=2))
        write(args.results / result_name(args.mode, backend), result)
        results[backend] = result
    if len(results) == 2:
        comparison = compare(args.mode, results)
        print(json.dumps(comparison["metrics"], indent=2))
        write(args.results / f"runs-{args.mode}-compare.json", comparison)


if __name__ == "__main__":
    main()
