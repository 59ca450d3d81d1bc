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
- ``incremental_idle_between_lease_checks``: the same, in a round that does not inspect
  the running runs' leases (the leader does every ``lease_check_interval``);
- ``incremental_100``: 100 runs change between rounds (a ``RunCancelRequested`` each,
  projected like any event), the rounds read those;
- ``dispatch``: 1,000 queue items pushed one ``push`` each, against one ``push_many``;
- ``wait_for_own_appends_ms_median``: the check a round makes that the projector applied
  the scheduler's previous appends, when it has (the read it costs, not the wait).

The embedded SQLite read model and lease store by default. Writes
bench/results/scheduler-round-<read model>-<lease store>.json.
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
from eventlog.port import LogRecord, Position
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
from leases.port import LeaseStore, QueueItem
from leases.redis_store import RedisLeaseStore
from leases.sqlite_store import SqliteLeaseStore
from projector import scheduler_reads as reads
from projector.batch import commit_batch, read_checkpoints
from projector.progress import ProjectionProgress
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
    check_leases: bool = True,
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
            since = now - timedelta(hours=1)
            gathered = gather(session, leases, since, jobs, view, check_leases=check_leases)
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


def time_dispatch(leases: LeaseStore, count: int) -> dict[str, float]:
    """Pushing ``count`` queue items one call each, against one ``push_many``."""
    payload = b"x" * 600  # about a ticket's size
    one = [("bench-one", QueueItem(f"one-{i}", 0, payload)) for i in range(count)]
    many = [("bench-many", QueueItem(f"many-{i}", 0, payload)) for i in range(count)]
    started = time.perf_counter()
    for queue, item in one:
        leases.push(queue, item)
    single = time.perf_counter() - started
    started = time.perf_counter()
    leases.push_many(many)
    batched = time.perf_counter() - started
    return {
        "items": count,
        "push_each_ms": round(single * 1000, 1),
        "push_many_ms": round(batched * 1000, 1),
    }


def time_wait_check(engine: Engine, rounds: int) -> float:
    """Median ms of the wait-for-own-appends check when the appends are already applied
    (one checkpoint read: what the step costs a round besides waiting for the projector)."""
    progress = ProjectionProgress(engine)
    with Session(engine) as session:
        positions = [Position(p, o - 1) for p, o in read_checkpoints(session).items()]
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        assert progress.wait_for(positions, timeout=1.0)
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 3)


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

        results: dict[str, Any] = {
            "full": time_rounds(engine, leases, args.rounds, before_round=OpenRuns.forget),
            "incremental_idle": time_rounds(
                engine, leases, args.rounds, before_round=lambda view: None
            ),
            "incremental_idle_between_lease_checks": time_rounds(
                engine, leases, args.rounds, before_round=lambda view: None, check_leases=False
            ),
            "incremental_100": time_rounds(engine, leases, args.rounds, before_round=change_100),
        }
        results["dispatch"] = time_dispatch(leases, 1000)
        results["wait_for_own_appends_ms_median"] = time_wait_check(engine, args.rounds)
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
    name = f"scheduler-round-{backend}-{report['lease_store']}.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
