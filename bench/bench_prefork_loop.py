"""The prefork pool driven from threads (``PreforkPool.run``), from an event loop through
its executor's threads (what the worker did before), and watched by the loop itself
(``PreforkPool.run_async``, what the worker does now), in one run.

From the repository root:

    .venv/bin/python -m bench.bench_prefork_loop [--runs 2000] [--children 4] [--rounds 3]

Each round runs ``--runs`` no-op python jobs (``tests.jobs.sample:noop``) ``--children``
at a time each way, in turn, and prints runs/s and the CPU of this process (the
worker's side: the children's CPU is the job's) per run.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from concurrent.futures import ThreadPoolExecutor

from worker.execution import RunCancel
from worker.prefork import PreforkPool

FUNCTION = "tests.jobs.sample:noop"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def threaded(pool: PreforkPool, runs: int, width: int) -> tuple[float, float]:
    def one(_: int) -> None:
        assert pool.run(FUNCTION, {}, 30, RunCancel()).status == "succeeded"

    with ThreadPoolExecutor(width) as threads:
        started, cpu = time.perf_counter(), cpu_seconds()
        list(threads.map(one, range(runs)))
        return time.perf_counter() - started, cpu_seconds() - cpu


def loop_to_threads(pool: PreforkPool, runs: int, width: int) -> tuple[float, float]:
    """What the worker did before: its loop hands each run to a thread that runs it."""

    async def all_runs() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(width))
        slots = asyncio.Semaphore(width)

        async def one() -> None:
            async with slots:
                result = await loop.run_in_executor(None, pool.run, FUNCTION, {}, 30, RunCancel())
                assert result.status == "succeeded"

        started, cpu = time.perf_counter(), cpu_seconds()
        await asyncio.gather(*(one() for _ in range(runs)))
        return time.perf_counter() - started, cpu_seconds() - cpu

    return asyncio.run(all_runs())


def on_the_loop(pool: PreforkPool, runs: int, width: int) -> tuple[float, float]:
    async def all_runs() -> tuple[float, float]:
        slots = asyncio.Semaphore(width)

        async def one() -> None:
            async with slots:
                result = await pool.run_async(FUNCTION, {}, 30, RunCancel())
                assert result.status == "succeeded"

        started, cpu = time.perf_counter(), cpu_seconds()
        await asyncio.gather(*(one() for _ in range(runs)))
        return time.perf_counter() - started, cpu_seconds() - cpu

    return asyncio.run(all_runs())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with PreforkPool(args.children, prestart=args.children) as pool:
        threaded(pool, 50, args.children)  # warm: every child has imported the job
        for round_ in range(1, args.rounds + 1):
            ways = (
                ("threads only", threaded),
                ("loop -> threads (before)", loop_to_threads),
                ("loop (now)", on_the_loop),
            )
            for name, way in ways:
                wall, cpu = way(pool, args.runs, args.children)
                print(
                    f"round {round_} {name:24}: {args.runs / wall:6.0f} runs/s, "
                    f"{1e6 * cpu / args.runs:4.0f} us CPU per run in this process"
                )


if __name__ == "__main__":
    main()
