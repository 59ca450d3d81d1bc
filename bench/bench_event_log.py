"""Benchmark the embedded SQLite event log and the Avro event codec.

    .venv/bin/python bench/bench_event_log.py [--events 50000] [--batch 1000] [--singles 2000]

Appends real encoded JobCreated / RunRequested events, batched (one transaction per
batch) and one by one (one transaction each), with ``synchronous`` FULL and NORMAL;
reads them back through a consumer; times the codec. Prints a table and writes
``bench/results/event_log.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventlog.port import LogRecord
from eventlog.sqlite import SqliteEventLog, Synchronous
from events.codec import EventCodec
from events.model import Event, JobCreated, JobSpec, RunRequested, to_millis

RESULTS = Path(__file__).parent / "results" / "event_log.json"
PARTITIONS = 12


@dataclass(frozen=True)
class Sample:
    name: str
    count: int
    seconds: float
    unit: str = "events"
    extra: dict[str, float] | None = None

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def make_events(total: int, jobs: int) -> list[Event]:
    """``jobs`` JobCreated events, then RunRequested events spread over those jobs."""
    start = to_millis(datetime(2025, 1, 1, tzinfo=UTC))
    job_ids = [str(uuid.uuid4()) for _ in range(jobs)]
    events = [
        Event(
            payload=JobCreated(
                spec=JobSpec(
                    name=f"job-{i}",
                    type="python",
                    function="reports.nightly:build",
                    schedule="*/5 * * * *",
                    parameters={"day": "yesterday", "limit": i},
                    tags=("reports",),
                    description="benchmark job",
                )
            ),
            occurred_at=start,
            actor="api",
            job_id=job_id,
        )
        for i, job_id in enumerate(job_ids)
    ]
    for i in range(total - jobs):
        job_id = job_ids[i % jobs]
        fire = start + timedelta(minutes=5 * (i // jobs))
        events.append(
            Event(
                payload=RunRequested(
                    trigger="schedule", scheduled_for=fire, parameters={"attempt_hint": 1}
                ),
                occurred_at=fire,
                actor="scheduler",
                job_id=job_id,
                run_id=str(uuid.uuid5(uuid.UUID(job_id), fire.isoformat())),
                attempt=1,
            )
        )
    return events


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_codec(codec: EventCodec, events: Sequence[Event]) -> tuple[list[Sample], list[bytes]]:
    encoded: list[bytes] = []
    encode_s = timed(lambda: encoded.extend(codec.encode(e) for e in events))
    decode_s = timed(lambda: [codec.decode(d) for d in encoded])
    samples = [
        Sample("codec encode", len(events), encode_s),
        Sample("codec decode", len(events), decode_s),
    ]
    for payload in (JobCreated, RunRequested):
        subset = [e for e in events if isinstance(e.payload, payload)][:10_000]
        data = [codec.encode(e) for e in subset]
        name = payload.__name__
        encode_s = timed(functools.partial(list, map(codec.encode, subset)))
        decode_s = timed(functools.partial(list, map(codec.decode, data)))
        samples.append(Sample(f"  encode {name}", len(subset), encode_s))
        samples.append(Sample(f"  decode {name}", len(data), decode_s))
    return samples, encoded


def bench_log(
    directory: Path,
    synchronous: Synchronous,
    records: Sequence[tuple[str, bytes]],
    batch: int,
    singles: int,
) -> list[Sample]:
    log = SqliteEventLog(directory / f"bench-{synchronous}.db", PARTITIONS, synchronous=synchronous)
    try:
        batched_s = timed(
            lambda: [log.append(records[i : i + batch]) for i in range(0, len(records), batch)]
        )
        latencies = [timed(functools.partial(log.append, [r])) for r in records[:singles]]
        read, read_s = consume_all(log, len(records) + singles)
    finally:
        log.close()
    size = sum(len(value) for _, value in records)
    return [
        Sample(
            f"append batched ({batch}/txn) {synchronous}",
            len(records),
            batched_s,
            extra={"MB/s": size / batched_s / 1e6},
        ),
        Sample(
            f"append single (1/txn) {synchronous}",
            singles,
            sum(latencies),
            extra={
                "p50 ms": statistics.median(latencies) * 1000,
                "p99 ms": statistics.quantiles(latencies, n=100)[98] * 1000,
            },
        ),
        Sample(f"consumer poll {synchronous}", read, read_s),
    ]


def consume_all(log: SqliteEventLog, expected: int) -> tuple[int, float]:
    consumer = log.consumer("bench")
    consumer.subscribe(lambda partitions: {p: 0 for p in partitions})
    got: list[LogRecord] = []
    started = time.perf_counter()
    while len(got) < expected:
        batch = consumer.poll(1000, 1.0)
        if not batch:
            break
        got.extend(batch)
    seconds = time.perf_counter() - started
    consumer.close()
    return len(got), seconds


def render(samples: Sequence[Sample]) -> str:
    lines = [f"{'measurement':<40} {'count':>8} {'seconds':>8} {'per second':>12}  notes", "-" * 90]
    for s in samples:
        notes = ", ".join(f"{k} {v:.2f}" for k, v in (s.extra or {}).items())
        lines.append(f"{s.name:<40} {s.count:>8} {s.seconds:>8.3f} {s.rate:>12,.0f}  {notes}")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the SQLite event log and codec.")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--singles", type=int, default=2_000)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the log files go (default: a temp dir)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    codec = EventCodec.default()
    events = make_events(args.events, args.jobs)
    samples, encoded = bench_codec(codec, events)
    records = [(event.key, data) for event, data in zip(events, encoded, strict=True)]
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for synchronous in ("FULL", "NORMAL"):
            samples += bench_log(Path(directory), synchronous, records, args.batch, args.singles)

    print(render(samples))
    result = {
        "environment": environment(),
        "parameters": {k: str(v) for k, v in vars(args).items()},
        "mean_event_bytes": sum(len(d) for d in encoded) / len(encoded),
        "results": [
            {
                "name": s.name.strip(),
                "count": s.count,
                "seconds": round(s.seconds, 4),
                "per_second": round(s.rate),
                **(s.extra or {}),
            }
            for s in samples
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
