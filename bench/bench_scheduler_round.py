"""Time the scheduler's rounds (read + gather + decide) with a large open-run backlog.

    .venv/bin/python -m bench.bench_scheduler_round [--runs 10000] [--rounds 20]
        [--database-url postgresql+psycopg://...] [--redis redis://...]

Seeds a read model through the real projector (``commit_batch``): 100 jobs (``allow``,
no schedule), ``--runs`` runs, half ``queued`` and half ``running`` (their run leases
held in the lease store, so none is lost). Then times rounds as the leader does them:
refresh the open runs, gather (jobs, leases of the running runs, dependencies), decide:

- ``full``: every round reads every open run (what each round did before issue 11; the
  view is forgotten before each round);
- ``incremental_idle``: rounds read only what changed, and nothing changed;
- ``incremental_100``: 100 runs change between rounds (a ``RunCancelRequested`` each,
  projected like any event), the rounds read those.

The embedded SQLite read model and lease store by default. Writes
bench/results/scheduler-round-<backend>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import random
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from chronolog.wiring import open_read_model
from eventlog.port import LogRecord
from events.codec import EventCodec
from events.model import (
    Event,
    JobCreated,
    JobSpec,
    Payload,
    RunCancelRequested,
    RunQueued,
    RunRequested,
    RunStarted,
)
from leases.dispatch import run_lease_key
from leases.port import LeaseStore
from leases.redis_store import RedisLeaseStore
from leases.sqlite_store import SqliteLeaseStore
from projector import scheduler_reads as reads
from projector.batch import commit_batch, read_checkpoints
from scheduler.decide import decide
from scheduler.gather import gather
from scheduler.open_runs import OpenRuns

RESULTS = Path(__file__).parent / "results"
JOBS = 100
PARTITIONS = 12


class Seeder:
    """Projects events straight into the read model, in log order per partition."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._codec = EventCodec.default()
        self._next: dict[int, int] = {}

    def project(self, events: Sequence[Event]) -> None:
        records = []
        now = datetime.now(UTC)
        for event in events:
            partition = zlib.crc32(event.key.encode()) % PARTITIONS
            offset = self._next.get(partition, 0)
            self._next[partition] = offset + 1
            value = self._codec.encode(event)
            records.append(LogRecord(partition, offset, event.key, value, now))
        for start in range(0, len(records), 2000):
            commit_batch(self._engine, records[start : start + 2000], self._codec)


def _event(payload: Payload, job: int, run: int | None = None) -> Event:
    return Event(
        payload=payload,
        occurred_at=datetime.now(UTC),
        actor="bench",
        job_id=f"job-{job}",
        run_id=None if run is None else f"run-{run}",
    )


def seed(engine: Engine, leases: LeaseStore, runs: int) -> tuple[Seeder, list[str]]:
    seeder = Seeder(engine)
    spec = JobSpec(
        name="bench", type="shell", command="true", concurrency_policy="allow", max_concurrency=1000
    )
    events = [
        _event(JobCreated(dataclasses.replace(spec, name=f"bench-{j}")), j) for j in range(JOBS)
    ]
    running: list[str] = []
    for run in range(runs):
        job = run % JOBS
        events += [
            _event(RunRequested(trigger="manual"), job, run),
            _event(RunQueued(queue="default"), job, run),
        ]
        if run % 2:
            lease = leases.acquire(run_lease_key(f"run-{run}"), "bench-worker", 3600)
            assert lease is not None
            events.append(_event(RunStarted("bench-worker", lease.token), job, run))
            running.append(f"run-{run}")
    seeder.project(events)
    return seeder, running


def time_rounds(
    engine: Engine,
    leases: LeaseStore,
    rounds: int,
    *,
    before_round: Callable[[OpenRuns], None],
) -> dict[str, Any]:
    view = OpenRuns(full_read_interval=timedelta(hours=1))
    jobs = reads.JobCache()
    rng = random.Random(1)
    samples: list[float] = []
    read: list[int] = []
    decided = 0
    with Session(engine) as session:
        checkpoints = read_checkpoints(session)
        view.refresh(session, checkpoints, datetime.now(UTC))  # the leader's first round
    for _ in range(rounds):
        before_round(view)
        started = time.perf_counter()
        now = datetime.now(UTC)
        with Session(engine) as session:
            checkpoints = read_checkpoints(session)
            read.append(view.refresh(session, checkpoints, now))
            gathered = gather(session, leases, now - timedelta(hours=1), jobs, view.runs)
        decided += len(decide(gathered.snapshot, now, rng))
        samples.append(time.perf_counter() - started)
    return {
        "rounds": rounds,
        "open_runs": len(view.runs),
        "rows_read_per_round": statistics.mean(read),
        "events_decided": decided,
        "round_ms_median": round(statistics.median(samples) * 1000, 2),
        "round_ms_p90": round(sorted(samples)[int(len(samples) * 0.9) - 1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'readmodel.db'}"
        backend = "postgresql" if url.startswith("postgresql") else "sqlite"
        engine = open_read_model(url, upgrade=True)
        leases: LeaseStore = (
            RedisLeaseStore(args.redis, prefix=f"bench-{time.time_ns()}:")
            if args.redis
            else SqliteLeaseStore(Path(tmp) / "leases.db")
        )
        began = time.perf_counter()
        seeder, running = seed(engine, leases, args.runs)
        seeded_s = time.perf_counter() - began
        changes = iter(range(10**9))

        def change_100(_: OpenRuns) -> None:
            events = []
            for _i in range(100):
                run = running[next(changes) % len(running)]
                job = int(run.removeprefix("run-")) % JOBS
                events.append(_event(RunCancelRequested("bench"), job, int(run[4:])))
            seeder.project(events)

        results = {
            "full": time_rounds(engine, leases, args.rounds, before_round=OpenRuns.forget),
            "incremental_idle": time_rounds(
                engine, leases, args.rounds, before_round=lambda view: None
            ),
            "incremental_100": time_rounds(engine, leases, args.rounds, before_round=change_100),
        }
        leases.close()
        engine.dispose()
    report = {
        "backend": backend,
        "lease_store": "redis" if args.redis else "sqlite",
        "runs": args.runs,
        "seeded_s": round(seeded_s, 1),
        "machine": f"{platform.machine()}, {platform.python_version()} (shared, 2 cores)",
        **results,
    }
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"scheduler-round-{backend}.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
