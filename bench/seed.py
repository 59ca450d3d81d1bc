"""Seed a read model with jobs and runs through the real log and projector.

From the repository root (as a module or as a file, both work):

    .venv/bin/python -m bench.seed --data-dir /tmp/seeded [--jobs 1000] [--runs 1000000]
    .venv/bin/python -m bench.seed --data-dir /tmp/seeded-pg --database postgresql+psycopg://…

Every job and run is an encoded event appended to the log (``--data-dir``'s SQLite log,
or ``--event-log kafka://…``), and the read model (``--data-dir``'s SQLite file, or
``--database``) is built by the projector the way ``chronolog up`` builds it, so the
``chronolog dashboard --data-dir DIR`` (or ``CHRONOLOG_DATABASE_URL``) shows it.

What is written, deterministic for a ``--seed``: ``WorkerRegistered`` for 8 workers;
``JobCreated`` for each job (python, shell or http; tags; interval or daily cron
schedules; a few paused); runs spread over the ``--days`` before ``--until``, a few jobs
running every minute and most a few times an hour (a Zipf-like spread), each with the
events of a real life: requested at its fire time, queued, started late by a
log-normal delay (a few by a minute or more), then succeeded; or failed, retried and
succeeded or dead-lettered; or cancelled; a few skipped for overlap, a few triggered by
hand; the latest run of some jobs still queued or running. Jobs 5-9, 30-34, ... (5 of
every 25) form 5-job dependency chains: a chained job's runs are triggered by the run
before it in the chain (``dependency`` trigger, the chain's correlation id), or skipped
as ``upstream_failed``, so the DAG has edges and pipelines.

A target that already holds events or projected rows is refused (exit 2): seeding is
idempotent by refusal, never doubled. Prints how long appending and projecting took.
``--from-log`` projects a log seeded before into another, empty read model (the same
history on SQLite and PostgreSQL, appended once).
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from chronolog.settings import load_settings
from chronolog.wiring import open_event_log, open_read_model
from eventlog.port import EventLog
from events.codec import EventCodec
from events.ids import dependency_run_id, fire_run_id
from events.model import (
    Event,
    JobCreated,
    JobPaused,
    JobSpec,
    JobType,
    Payload,
    RunCancelled,
    RunCancelRequested,
    RunDeadLettered,
    RunFailed,
    RunQueued,
    RunRequested,
    RunRetryScheduled,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    RunTrigger,
    WorkerRegistered,
)
from projector.batch import read_checkpoints
from projector.loop import Projector
from projector.tables import JobRecord

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

WORKERS: Final = tuple(f"bench-worker-{n}" for n in range(1, 9))
TAGS: Final = ("etl", "reports", "billing", "ml", "ops", "sync", "nightly", "finance")
CHAIN: Final = 5  # jobs per dependency chain; one block of 5 jobs in 5 is a chain
APPEND_CHUNK: Final = 5000
MS: Final = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class JobPlan:
    index: int
    job_id: str
    spec: JobSpec
    runs: int
    interval: timedelta
    median_ms: float  # the job's typical duration
    parent: int | None  # the job before it in its chain
    paused: bool


@dataclass(slots=True)
class Outcome:
    """What became of one run: what a dependent run needs to know."""

    run_id: str
    correlation_id: str
    completed: bool
    finished_at: datetime
    attempt: int


@dataclass(slots=True)
class Seeder:
    """Writes the life of every run as events; one RNG, so a seed gives one history."""

    rng: random.Random
    start: datetime
    until: datetime
    token: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


# --- the plan: which jobs, how many runs each ---------------------------------------


def chained(index: int) -> bool:
    return (index // CHAIN) % CHAIN == 1  # jobs 5-9, 30-34, ...: not the busiest ones


def run_counts(jobs: int, runs: int) -> list[int]:
    """Runs per job: Zipf-like over independent jobs and chains (a chain's jobs share its
    count), summing exactly to ``runs``; the remainder goes to job 0."""
    weights = [1.0 / (index + 1) ** 0.8 for index in range(jobs)]
    for index in range(jobs):
        if chained(index) and index % CHAIN:
            weights[index] = weights[index - index % CHAIN]
    scale = runs / sum(weights)
    counts = [int(weight * scale) for weight in weights]
    counts[0] += runs - sum(counts)
    return counts


def schedule_for(interval: timedelta) -> str:
    seconds = max(1, round(interval.total_seconds()))
    if seconds >= 86_400:
        return "0 9 * * *"
    if seconds % 60 == 0:
        return f"every {seconds // 60}m"
    return f"every {seconds}s"


def job_spec(index: int, interval: timedelta, parent_id: str | None, rng: random.Random) -> JobSpec:
    kind: JobType = rng.choices(("python", "shell", "http"), (70, 20, 10))[0]
    target = {
        "python": {"function": f"jobs.task_{index % 40}"},
        "shell": {"command": f"./scripts/step_{index % 12}.sh"},
        "http": {"url": f"https://hooks.example.com/jobs/{index}", "method": "POST"},
    }[kind]
    return JobSpec(
        name=f"job-{index:04d}-{rng.choice(TAGS)}",
        type=kind,
        schedule=None if parent_id else schedule_for(interval),
        parameters={"batch": index % 7},
        tags=tuple(sorted(set(rng.sample(TAGS, rng.randint(1, 2))))),
        depends_on=(parent_id,) if parent_id else (),
        retries=1,
        queue="default" if index % 4 else "cpu-heavy",
        priority=index % 3,
        **target,  # type: ignore[arg-type]  # one of function / command / url+method
    )


def plan(jobs: int, runs: int, days: float, rng: random.Random) -> list[JobPlan]:
    span = timedelta(days=days)
    plans: list[JobPlan] = []
    for index, count in enumerate(run_counts(jobs, runs)):
        parent = index - 1 if chained(index) and index % CHAIN else None
        interval = span / max(count, 1)
        job_id = f"job-{uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16]}"
        parent_id = plans[parent].job_id if parent is not None else None
        plans.append(
            JobPlan(
                index=index,
                job_id=job_id,
                spec=job_spec(index, interval, parent_id, rng),
                runs=count,
                interval=interval,
                median_ms=math.exp(rng.uniform(math.log(50), math.log(300_000))),
                parent=parent,
                paused=parent is None and rng.random() < 0.03,
            )
        )
    return plans


# --- events ------------------------------------------------------------------------


def worker_events(at: datetime) -> list[Event]:
    return [
        Event(
            payload=WorkerRegistered(name, "bench-host", 1000 + n, ("default", "cpu-heavy"), 4),
            occurred_at=at,
            actor=name,
        )
        for n, name in enumerate(WORKERS)
    ]


def job_events(job: JobPlan, at: datetime) -> list[Event]:
    payloads: list[Payload] = [JobCreated(job.spec)]
    if job.paused:
        payloads.append(JobPaused(reason="maintenance"))
    return [
        Event(payload=p, occurred_at=at + n * MS, actor="api", job_id=job.job_id)
        for n, p in enumerate(payloads)
    ]


class RunLife:
    """The events of one run, in order, with the clock moving forward."""

    def __init__(self, seeder: Seeder, job: JobPlan, run_id: str, correlation_id: str) -> None:
        self.seeder, self.job = seeder, job
        self.run_id, self.correlation_id = run_id, correlation_id
        self.events: list[Event] = []
        self.attempt = 1

    def add(self, payload: Payload, at: datetime, actor: str = "scheduler") -> None:
        self.events.append(
            Event(
                payload=payload,
                occurred_at=at,
                actor=actor,
                job_id=self.job.job_id,
                run_id=self.run_id,
                attempt=self.attempt,
                correlation_id=self.correlation_id,
            )
        )

    def start(self, at: datetime) -> tuple[str, int, datetime]:
        """Queued then started at ``at``: the worker, its lease token, the start time."""
        rng = self.seeder.rng
        self.add(RunQueued(self.job.spec.queue, self.job.spec.priority), at)
        started = at + rng.randint(2, 40) * MS
        worker, token = rng.choice(WORKERS), next(self.seeder.token)
        self.add(RunStarted(worker, token), started, actor=worker)
        return worker, token, started

    def duration_ms(self) -> int:
        return max(1, int(self.job.median_ms * self.seeder.rng.lognormvariate(0, 0.4)))


def lateness(rng: random.Random) -> timedelta:
    """Start minus fire time: mostly well under a second, a few by a minute or more."""
    if rng.random() < 0.02:
        return timedelta(seconds=rng.uniform(5, 180))
    return timedelta(seconds=rng.lognormvariate(-1.5, 0.8))


def attempt_ends(life: RunLife, at: datetime, fail: bool) -> datetime:
    """One attempt from queued to its outcome; returns when it ended."""
    worker, token, started = life.start(at)
    duration = life.duration_ms()
    ended = started + duration * MS
    if fail:
        error = f"RuntimeError: upstream answered 503 (attempt {life.attempt})"
        life.add(RunFailed(worker, token, duration, error, exit_code=1), ended, actor=worker)
    else:
        out = f"processed {life.seeder.rng.randint(1, 50_000)} rows\n"
        life.add(RunSucceeded(worker, token, duration, exit_code=0, stdout=out), ended, worker)
    return ended


def retried(life: RunLife, failed_at: datetime, last_fails: bool) -> datetime:
    """The scheduler retries once; attempt 2 succeeds or the run is dead-lettered."""
    retry_at = failed_at + timedelta(seconds=1)
    life.add(RunRetryScheduled(2, retry_at, 1000), failed_at + 5 * MS)
    life.attempt = 2
    ended = attempt_ends(life, retry_at, fail=last_fails)
    if last_fails:
        life.add(RunDeadLettered("retries exhausted", attempts=2), ended + 5 * MS)
    return ended


def cancelled(life: RunLife, at: datetime) -> datetime:
    worker, token, started = life.start(at)
    asked = started + life.duration_ms() * MS
    life.add(RunCancelRequested("stopped by an operator"), asked, actor="api")
    life.add(RunCancelled("stopped by an operator", worker, token), asked + 50 * MS, worker)
    return asked + 50 * MS


def live(life: RunLife, at: datetime, fate: float) -> Outcome:
    """A run past its request: its fate (a uniform draw) picks how it ends."""
    end: datetime
    completed = True
    if fate < 0.02:  # failed, then the retry ...
        end = retried(life, attempt_ends(life, at, fail=True), last_fails=fate < 0.008)
        completed = fate >= 0.008
    elif fate < 0.025:
        end, completed = cancelled(life, at), False
    else:
        end = attempt_ends(life, at, fail=False)
    return Outcome(life.run_id, life.correlation_id, completed, end, life.attempt)


def open_run(life: RunLife, at: datetime, running: bool) -> Outcome:
    """The latest run of a job, still queued or running when the seed ends."""
    if running:
        life.start(at)
    else:
        life.add(RunQueued(life.job.spec.queue, life.job.spec.priority), at)
    return Outcome(life.run_id, life.correlation_id, False, at, 1)


def scheduled_run(seeder: Seeder, job: JobPlan, k: int) -> tuple[list[Event], Outcome]:
    rng = seeder.rng
    fire = seeder.start + job.interval * k + job.index * 7 * MS
    manual = rng.random() < 0.02
    trigger: RunTrigger = "manual" if manual else "schedule"
    run_id = f"run-{seeder.uid()}" if manual else fire_run_id(job.job_id, fire)
    life = RunLife(seeder, job, run_id, run_id)
    requested = fire + rng.randint(5, 60) * MS
    life.add(RunRequested(trigger, scheduled_for=None if manual else fire), requested)
    fate = rng.random()
    if k == job.runs - 1 and fate < 0.05:  # the latest run of a few jobs is still open
        return life.events, open_run(life, fire + lateness(rng), running=fate < 0.035)
    if fate > 0.995:
        life.add(RunSkipped("overlap", "the previous run was still running"), requested + MS)
        return life.events, Outcome(run_id, run_id, False, requested + MS, 1)
    return life.events, live(life, fire + lateness(rng), fate)


def dependent_run(seeder: Seeder, job: JobPlan, upstream: Outcome) -> tuple[list[Event], Outcome]:
    run_id = dependency_run_id(job.job_id, upstream.run_id, upstream.attempt)
    life = RunLife(seeder, job, run_id, upstream.correlation_id)
    requested = upstream.finished_at + seeder.rng.randint(10, 200) * MS
    life.add(RunRequested("dependency", upstream_run_id=upstream.run_id), requested)
    if not upstream.completed:
        life.add(RunSkipped("upstream_failed", f"run {upstream.run_id}"), requested + MS)
        return life.events, Outcome(run_id, life.correlation_id, False, requested + MS, 1)
    return life.events, live(life, requested + seeder.rng.randint(5, 80) * MS, seeder.rng.random())


def history(seeder: Seeder, plans: Sequence[JobPlan]) -> Iterator[list[Event]]:
    """Chunks of events: the workers, then each job with all its runs (a chain's jobs in
    order, so a dependent run follows its upstream run's outcome)."""
    yield worker_events(seeder.start - timedelta(hours=1))
    outcomes: list[Outcome] = []
    for job in plans:
        events = job_events(job, seeder.start - timedelta(minutes=30))
        upstream = outcomes if job.parent is not None else []
        outcomes = []
        for k in range(job.runs):
            made = dependent_run(seeder, job, upstream[k]) if upstream else None
            run_events, outcome = made or scheduled_run(seeder, job, k)
            events.extend(run_events)
            outcomes.append(outcome)
        yield events


# --- appending and projecting --------------------------------------------------------


class NotEmpty(Exception):
    """The target already holds events or projected rows."""


def refuse_non_empty(log: EventLog | None, engine: Engine) -> None:
    """Refuse a log (unless None: not to be written) or read model that holds anything."""
    for partition in range(log.partitions if log is not None else 0):
        if log is not None and log.read(partition, 0, limit=1):
            raise NotEmpty(f"the event log already has events (partition {partition})")
    with Session(engine) as session:
        if sum(read_checkpoints(session).values()) or session.scalar(
            select(func.count()).select_from(JobRecord)
        ):
            raise NotEmpty("the read model already holds projected events")


def append(log: EventLog, codec: EventCodec, chunks: Iterator[list[Event]]) -> int:
    pending: list[tuple[str, bytes]] = []
    total = 0
    for chunk in chunks:
        pending.extend((event.key, codec.encode(event)) for event in chunk)
        while len(pending) >= APPEND_CHUNK:
            log.append(pending[:APPEND_CHUNK])
            total += APPEND_CHUNK
            del pending[:APPEND_CHUNK]
    if pending:
        log.append(pending)
        total += len(pending)
    return total


def project(log: EventLog, engine: Engine, codec: EventCodec, total: int) -> None:
    projector = Projector(log, engine, codec, group=f"chronolog-seed-{uuid.uuid4().hex[:8]}")
    try:
        while projector.applied < total:
            projector.step(timeout=0.5)
    finally:
        projector.close()


@dataclass(frozen=True, slots=True)
class Seeded:
    events: int
    append_s: float
    project_s: float


def seed(
    log: EventLog, engine: Engine, *, jobs: int, runs: int, days: float, until: datetime, seed: int
) -> Seeded:
    """Append the history of ``jobs`` and ``runs`` to an empty log and project it."""
    refuse_non_empty(log, engine)
    codec = EventCodec.default()
    rng = random.Random(seed)
    seeder = Seeder(rng, until - timedelta(days=days), until)
    began = time.perf_counter()
    total = append(log, codec, history(seeder, plan(jobs, runs, days, rng)))
    appended = time.perf_counter()
    project(log, engine, codec, total)
    return Seeded(total, appended - began, time.perf_counter() - appended)


def project_log(log: EventLog, engine: Engine) -> Seeded:
    """Project a log seeded before (the same history into a second read model, e.g.
    PostgreSQL beside SQLite) into an empty read model. The log's end is known from its
    watermarks: right on the SQLite log and Kafka, not on the local Tansu broker."""
    refuse_non_empty(None, engine)
    total = sum(marks.high for marks in log.all_watermarks().values())
    began = time.perf_counter()
    project(log, engine, EventCodec.default(), total)
    return Seeded(total, 0.0, time.perf_counter() - began)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="events.db, readmodel.db")
    parser.add_argument("--database", help="read-model URL (default: DATA_DIR/readmodel.db)")
    parser.add_argument("--event-log", help="event log URL (default: DATA_DIR/events.db)")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--until", type=datetime.fromisoformat, help="end of the history (UTC)")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument(
        "--from-log", action="store_true", help="only project the (seeded) log into the read model"
    )
    args = parser.parse_args(argv)
    until = (args.until or datetime.now(UTC)).replace(microsecond=0)
    settings = load_settings(
        {}, data_dir=args.data_dir, database_url=args.database, event_log=args.event_log
    )
    log = open_event_log(settings)
    engine = open_read_model(settings.database, upgrade=True)
    try:
        done = (
            project_log(log, engine)
            if args.from_log
            else seed(
                log,
                engine,
                jobs=args.jobs,
                runs=args.runs,
                days=args.days,
                until=until,
                seed=args.seed,
            )
        )
    except NotEmpty as e:
        print(f"refused: {e}; seed into an empty data dir or database", file=sys.stderr)
        return 2
    finally:
        log.close()
        engine.dispose()
    what = "the log's" if args.from_log else f"{args.jobs:,} jobs and {args.runs:,} runs:"
    print(
        f"seeded {what} {done.events:,} events, appended in {done.append_s:.1f} s, projected "
        f"in {done.project_s:.1f} s ({done.events / done.project_s:,.0f} events/s) "
        f"into {settings.database_label}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
