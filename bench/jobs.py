"""Job functions the benchmarks run (``bench.jobs:<name>``; the repository is the app dir)."""

from __future__ import annotations

import asyncio


async def nap(seconds: float = 5.0) -> None:
    """The issue's ``async def job(): await asyncio.sleep(5)``."""
    await asyncio.sleep(seconds)


def wall_clock() -> float:
    """The machine's clock (Unix seconds) when the job's first line ran: where a run's
    trigger -> start ends (``bench.bench_runs path``)."""
    import time

    return time.time()
