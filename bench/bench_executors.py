"""Benchmark the executors: no-op python tasks through the prefork pool, shell ``true``.

    .venv/bin/python -m bench.bench_executors [--tasks 20000] [--shells 1000] [--processes 2]

Python: ``--processes`` children, driven by one thread (latency per task, the pool's
overhead) and by as many threads as children (throughput, how a worker uses it).
Shell: ``true`` started one at a time and from two threads. Prints a table and writes
``bench/results/executors.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from events.model import JobSpec
from worker.execution import ExecutionRequest, Executor
from worker.python_executor import PythonExecutor
from worker.shell_executor import ShellExecutor

RESULTS = Path(__file__).parent / "results" / "executors.json"
NOOP = f"{__spec__.name if __spec__ is not None else 'bench_executors'}:noop"


def noop() -> None:
    """The job the python benchmark runs."""


@dataclass(frozen=True)
class Sample:
    name: str
    count: int
    seconds: float
    latencies_us: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def summary(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "name": self.name,
            "count": self.count,
            "seconds": round(self.seconds, 4),
            "per_second": round(self.rate),
        }
        if self.latencies_us:
            cuts = statistics.quantiles(self.latencies_us, n=100)
            row |= {"p50_us": round(cuts[49], 1), "p99_us": round(cuts[98], 1)}
        return row


def request_for(spec: JobSpec) -> ExecutionRequest:
    return ExecutionRequest(run_id="bench-run", job_id="bench-job", attempt=1, spec=spec)


def sequential(name: str, executor: Executor, request: ExecutionRequest, count: int) -> Sample:
    """``count`` runs one after another, timing each one."""
    cancel = threading.Event()
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        before = time.perf_counter()
        result = executor.execute(request, cancel)
        latencies.append((time.perf_counter() - before) * 1e6)
        assert result.status == "succeeded", result
    return Sample(name, count, time.perf_counter() - started, latencies)


def parallel(
    name: str, executor: Executor, request: ExecutionRequest, count: int, threads: int
) -> Sample:
    """``count`` runs spread over ``threads`` threads, as a worker's run threads would."""
    cancel = threading.Event()
    share = count // threads

    def loop(_: int) -> None:
        for _ in range(share):
            assert executor.execute(request, cancel).status == "succeeded"

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))
    return Sample(name, share * threads, time.perf_counter() - started)


def bench_python(tasks: int, processes: int) -> list[Sample]:
    request = request_for(JobSpec(name="noop", type="python", function=NOOP))
    with_pool = PythonExecutor(processes=processes)
    try:
        sequential("warm-up", with_pool, request, 200 * processes)
        return [
            sequential("python no-op, 1 thread", with_pool, request, tasks),
            parallel(f"python no-op, {processes} threads", with_pool, request, tasks, processes),
        ]
    finally:
        with_pool.close()


def bench_shell(count: int) -> list[Sample]:
    request = request_for(JobSpec(name="true", type="shell", argv=("true",)))
    shell = ShellExecutor()
    return [
        sequential("shell true, 1 thread", shell, request, count),
        parallel("shell true, 2 threads", shell, request, count, 2),
    ]


def render(samples: list[Sample]) -> str:
    lines = [
        f"{'benchmark':<28} {'runs':>7} {'seconds':>8} {'runs/s':>8} {'p50 us':>8} {'p99 us':>8}"
    ]
    for sample in samples:
        row = sample.summary()
        lines.append(
            f"{sample.name:<28} {sample.count:>7} {sample.seconds:>8.2f} {sample.rate:>8.0f}"
            f" {row.get('p50_us', ''):>8} {row.get('p99_us', ''):>8}"
        )
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the python and shell executors.")
    parser.add_argument("--tasks", type=int, default=20_000, help="no-op python tasks per case")
    parser.add_argument("--shells", type=int, default=1_000, help="shell runs per case")
    parser.add_argument("--processes", type=int, default=2, help="prefork pool size")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    samples = bench_python(args.tasks, args.processes) + bench_shell(args.shells)
    print(render(samples))
    result = {
        "environment": environment(),
        "parameters": {k: str(v) for k, v in vars(args).items()},
        "results": [sample.summary() for sample in samples],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
