"""Events projected per second into the embedded (SQLite) read model.

    .venv/bin/python bench/bench_projector.py [--events 100000]

Appends a realistic mix (job creates/updates/pauses and run events) to a fresh SQLite
log, then times the projector draining it at several batch sizes. Also times a full
``replay`` of the same log. Writes bench/results/projector.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from chronolog.wiring import open_read_model
from events.codec import EventCodec
from events.model import (
    Event,
    JobCreated,
    JobPaused,
    JobResumed,
    JobSpec,
    JobUpdated,
    Payload,
    RunQueued,
    RunRequested,
)
from events.sqlite_log import SqliteEventLog
from projector.batch import read_checkpoints
from projector.loop import Projector
from projector.replay import replay

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def history(total: int) -> list[Event]:
    """Per job: created, updated, paused, resumed, then run events: 10 events a job."""
    events: list[Event] = []
    job = 0
    while len(events) < total:
        job_id = f"job-{job:08d}"
        spec = JobSpec(
            name=f"bench-{job}",
            type="python",
            function="m.f",
            schedule="*/5 * * * *",
            tags=("a", "b"),
        )
        payloads: list[Payload] = [
            JobCreated(spec),
            JobUpdated(dataclasses.replace(spec, retries=1), ("retries",)),
            JobPaused(),
            JobResumed(),
        ]
        payloads += [RunRequested(trigger="schedule"), RunQueued(queue="default")] * 3
        for i, payload in enumerate(payloads):
            run_id = (
                f"run-{job}-{i // 2}" if isinstance(payload, RunRequested | RunQueued) else None
            )
            at = T0 + timedelta(seconds=job, milliseconds=i)
            events.append(
                Event(payload=payload, occurred_at=at, actor="bench", job_id=job_id, run_id=run_id)
            )
        job += 1
    return events[:total]


def applied(engine: Engine) -> int:
    with Session(engine) as session:
        return sum(read_checkpoints(session).values())


def time_projection(
    log: SqliteEventLog, codec: EventCodec, directory: Path, batch_size: int, total: int
) -> float:
    engine = open_read_model(f"sqlite:///{directory / f'read-{batch_size}.db'}")
    projector = Projector(log, engine, codec, batch_size=batch_size)
    start = time.perf_counter()
    while projector.applied < total:
        projector.step(timeout=0.01)
    elapsed = time.perf_counter() - start
    assert applied(engine) == total
    projector.close()
    engine.dispose()
    return total / elapsed


def time_replay(log: SqliteEventLog, codec: EventCodec, directory: Path, total: int) -> float:
    engine = open_read_model(f"sqlite:///{directory / 'replay.db'}")
    start = time.perf_counter()
    count = replay(log, engine, codec)
    elapsed = time.perf_counter() - start
    assert count == total
    engine.dispose()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    codec = EventCodec.default()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        log = SqliteEventLog(directory / "events.db", partitions=12)
        events = history(args.events)
        for start in range(0, len(events), 5000):
            chunk = events[start : start + 5000]
            log.append([(e.key, codec.encode(e)) for e in chunk])
        results = {
            f"projected_per_s_batch_{size}": time_projection(
                log, codec, directory, size, args.events
            )
            for size in (100, 1000, 5000)
        }
        results["replay_per_s"] = time_replay(log, codec, directory, args.events)
        log.close()
    results["events"] = args.events
    for name, value in results.items():
        print(f"{name:>32}: {value:,.0f}")
    out = Path(__file__).parent / "results" / "projector.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
