"""Benchmark the lease store: the embedded SQLite one, or Redis with ``--redis URL``.

    .venv/bin/python bench/bench_leases.py [--ops 5000] [--wakeups 300] [--items 3000]
    .venv/bin/python bench/bench_leases.py --redis redis://127.0.0.1:6379/0

Times single-thread operations (acquire + release, renew, push, pop, publish, has_flag),
the wake-up latency of a blocked ``pop`` (push from the same object, and from another
process while several idle workers poll), and the pop throughput of several worker
processes draining one queue. Prints a table and writes ``bench/results/leases.json``
(``leases-redis.json`` with ``--redis``; its keys go under a fresh prefix, deleted after).
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import platform
import sqlite3
import statistics
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from leases.port import LeaseStore, QueueItem
from leases.redis_store import RedisLeaseStore
from leases.sqlite_store import SqliteLeaseStore

RESULTS = Path(__file__).parent / "results" / "leases.json"
REDIS_RESULTS = Path(__file__).parent / "results" / "leases-redis.json"
Opener = Callable[[], LeaseStore]  # picklable: opens a handle on the store in any process
SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class Sample:
    name: str
    count: int
    seconds: float
    extra: dict[str, float] | None = None

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_operations(store: LeaseStore, ops: int) -> list[Sample]:
    """One thread, one operation per transaction."""
    leases = [store.acquire(f"run:{i}", "bench", ttl=60) for i in range(ops)]
    tokens = [lease.token for lease in leases if lease is not None]
    payload = b"x" * 512
    steps: list[tuple[str, Callable[[int], object]]] = [
        ("renew", lambda i: store.renew(f"run:{i}", tokens[i], ttl=60)),
        ("release", lambda i: store.release(f"run:{i}", tokens[i])),
        ("acquire", lambda i: store.acquire(f"run:{i}", "bench", ttl=60)),
        ("push", lambda i: store.push("default", QueueItem(f"run-{i}", i % 3, payload))),
        ("pop (ready item)", lambda i: store.pop(["default", "gpu"], 0)),
        ("pop (empty queues)", lambda i: store.pop(["default", "gpu"], 0)),
        ("set_flag", lambda i: store.set_flag(f"cancel:{i}", ttl=60)),
        ("has_flag", lambda i: store.has_flag(f"cancel:{i}")),
        ("publish 200 B", lambda i: store.publish(f"output:{i % 10}", payload[:200])),
    ]
    return [Sample(name, ops, timed(functools.partial(repeat, step, ops))) for name, step in steps]


def repeat(step: Callable[[int], object], times: int) -> None:
    for i in range(times):
        step(i)


def percentiles(latencies: Sequence[float], name: str, seconds: float) -> Sample:
    cuts = statistics.quantiles(latencies, n=100)
    return Sample(
        name,
        len(latencies),
        seconds,
        extra={
            "p50 ms": cuts[49] * 1000,
            "p99 ms": cuts[98] * 1000,
            "max ms": max(latencies) * 1000,
        },
    )


def bench_wakeup_same_object(store: LeaseStore, count: int) -> Sample:
    """A thread blocked in pop; pushes through the same store object."""
    latencies: list[float] = []

    def pop_all() -> None:
        for _ in range(count):
            got = store.pop(["wake"], 10)
            if got is not None:
                latencies.append(time.time() - struct.unpack("d", got[1].payload)[0])

    started = time.perf_counter()
    popper = threading.Thread(target=pop_all)
    popper.start()
    for i in range(count):
        time.sleep(0.002)  # pace the pushes so the popper is waiting each time
        store.push("wake", QueueItem(f"w{i}", 0, struct.pack("d", time.time())))
    popper.join()
    return percentiles(latencies, "pop wake-up, same object", time.perf_counter() - started)


def _pop_and_report(opener: Opener, queue: str, out: Path) -> None:
    """Pop until a ``stop`` item, writing one latency (or count) per popped item."""
    store = opener()
    lines: list[str] = []
    try:
        while (got := store.pop([queue], 30)) is not None and got[1].id != "stop":
            sent = struct.unpack("d", got[1].payload)[0] if got[1].payload else 0.0
            lines.append(f"{time.time() - sent:.6f}")
    finally:
        store.close()
    out.write_text("\n".join(lines))


def start_poppers(
    opener: Opener, queue: str, directory: Path, count: int
) -> tuple[list[multiprocessing.process.BaseProcess], list[Path]]:
    outs = [directory / f"{queue}-{n}.txt" for n in range(count)]
    poppers: list[multiprocessing.process.BaseProcess] = [
        SPAWN.Process(target=_pop_and_report, args=(opener, queue, out)) for out in outs
    ]
    for popper in poppers:
        popper.start()
    return poppers, outs


def stop_poppers(
    store: LeaseStore, queue: str, poppers: Sequence[multiprocessing.process.BaseProcess]
) -> None:
    for _ in poppers:
        store.push(queue, QueueItem("stop", -1, b""))
        while "stop" in store.queued_ids(queue):
            time.sleep(0.001)
    for popper in poppers:
        popper.join(timeout=60)


def bench_wakeup_other_process(
    store: LeaseStore, opener: Opener, directory: Path, count: int, workers: int
) -> Sample:
    """Idle worker processes blocked in pop; pushes come from this process."""
    poppers, outs = start_poppers(opener, "remote", directory, workers)
    time.sleep(1.0)  # let the workers start and block
    started = time.perf_counter()
    for i in range(count):
        time.sleep(0.01)  # one trigger at a time, as a scheduler tick would push
        store.push("remote", QueueItem(f"r{i}", 0, struct.pack("d", time.time())))
    stop_poppers(store, "remote", poppers)
    latencies = [float(v) for out in outs for v in out.read_text().split()]
    name = f"pop wake-up, {workers} other processes"
    return percentiles(latencies, name, time.perf_counter() - started)


def bench_drain(
    store: LeaseStore, opener: Opener, directory: Path, items: int, workers: int
) -> Sample:
    """Worker processes drain a queue filled up front."""
    for i in range(items):
        store.push("drain", QueueItem(f"d{i}", i % 5, b""))
    poppers, outs = start_poppers(opener, "drain", directory, workers)
    started = time.perf_counter()
    while store.queued_ids("drain"):
        time.sleep(0.001)
    seconds = time.perf_counter() - started
    stop_poppers(store, "drain", poppers)
    popped = sum(len(out.read_text().split()) for out in outs)
    return Sample(f"pop drain by {workers} processes", popped, seconds)


def render(samples: Sequence[Sample]) -> str:
    lines = [f"{'measurement':<40} {'count':>8} {'seconds':>8} {'per second':>12}  notes", "-" * 90]
    for s in samples:
        notes = ", ".join(f"{k} {v:.2f}" for k, v in (s.extra or {}).items())
        lines.append(f"{s.name:<40} {s.count:>8} {s.seconds:>8.3f} {s.rate:>12,.0f}  {notes}")
    return "\n".join(lines)


def environment(redis_url: str | None) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "store": "sqlite" if redis_url is None else f"redis {_redis_version(redis_url)}",
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the lease store.")
    parser.add_argument("--ops", type=int, default=5_000)
    parser.add_argument("--wakeups", type=int, default=300)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--items", type=int, default=3_000)
    parser.add_argument("--dir", type=Path, default=None, help="where files go (default: temp)")
    parser.add_argument("--redis", metavar="URL", help="benchmark Redis at URL instead")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as name:
        directory = Path(name)
        opener, clean_up = open_store(args.redis, directory)
        store = opener()
        try:
            samples = bench_operations(store, args.ops)
            samples.append(bench_wakeup_same_object(store, args.wakeups))
            remote = functools.partial(bench_wakeup_other_process, store, opener, directory)
            samples.append(remote(args.wakeups, args.workers))
            samples.append(bench_drain(store, opener, directory, args.items, args.workers))
        finally:
            store.close()
            clean_up()

    print(render(samples))
    result = {
        "environment": environment(args.redis),
        "parameters": {k: str(v) for k, v in vars(args).items()},
        "results": [
            {
                "name": s.name,
                "count": s.count,
                "seconds": round(s.seconds, 4),
                "per_second": round(s.rate),
                **{k: round(v, 3) for k, v in (s.extra or {}).items()},
            }
            for s in samples
        ],
    }
    out: Path = args.out or (RESULTS if args.redis is None else REDIS_RESULTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


def open_store(redis_url: str | None, directory: Path) -> tuple[Opener, Callable[[], None]]:
    """An opener for the store to measure, and what deletes its data afterwards."""
    if redis_url is None:
        return functools.partial(SqliteLeaseStore, directory / "leases.db"), lambda: None
    prefix = f"chronolog-bench:{uuid.uuid4().hex[:12]}:"
    opener = functools.partial(RedisLeaseStore, redis_url, prefix=prefix)
    return opener, functools.partial(_delete_prefix, redis_url, prefix)


def _delete_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.unlink(*keys[start : start + 1000])
    finally:
        client.close()


def _redis_version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
