"""The roll-ups, projected from a known set of runs: the analytics reads hold exactly the
counts, percentiles and gauges of those runs, and a replay builds the same tables."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from chronolog.wiring import Runtime, open_read_model
from events.model import (
    Event,
    JobCreated,
    JobSpec,
    Payload,
    RunCancelled,
    RunDeadLettered,
    RunFailed,
    RunQueued,
    RunRequested,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    WorkerLost,
    WorkerRegistered,
)
from projector import analytics_reads as reads
from projector.batch import read_checkpoints
from projector.loop import Projector
from projector.replay import differences, replay, snapshot
from projector.rollups import MINUTE, bin_bounds, histogram_bin
from projector.tables import EventIndexRecord
from tests.conftest import wait_until

B = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
MINUTES = [B + timedelta(minutes=m) for m in range(5)]
T = TypeVar("T")
ROLLUP_TABLES = (
    "rollup_runs",
    "rollup_job_runs",
    "rollup_job_histograms",
    "rollup_gauges",
    "rollup_gauge_levels",
)


def at(seconds: int) -> datetime:
    return B + timedelta(seconds=seconds)


def run(job: str, run_id: str, *steps: tuple[int, Payload]) -> list[Event]:
    return [
        Event(payload=p, occurred_at=at(s), actor="test", job_id=job, run_id=run_id, attempt=1)
        for s, p in steps
    ]


def worker(seconds: int, payload: Payload) -> Event:
    return Event(payload=payload, occurred_at=at(seconds), actor="test")


def started(worker_id: str = "w1") -> RunStarted:
    return RunStarted(worker_id=worker_id, lease_token=1)


def known_events() -> list[Event]:
    """Two jobs, five runs and two workers over the first three minutes after B."""
    jobs = [
        Event(
            payload=JobCreated(JobSpec(name=name, type="shell", command="true")),
            occurred_at=B - timedelta(hours=1),
            actor="test",
            job_id=job_id,
        )
        for job_id, name in (("job-a", "alpha"), ("job-b", "beta"))
    ]
    succeeded = run(
        "job-a",
        "a1",
        (0, RunRequested(trigger="schedule", scheduled_for=at(0))),
        (1, RunQueued(queue="default")),
        (2, started()),  # 2 s late
        (62, RunSucceeded(worker_id="w1", lease_token=1, duration_ms=60_000)),
    )
    failed = run(
        "job-a",
        "a2",
        (60, RunRequested(trigger="schedule", scheduled_for=at(60))),
        (61, RunQueued(queue="default")),
        (65, started()),  # 5 s late
        (70, RunFailed(worker_id="w1", lease_token=1, duration_ms=5_000, error="boom")),
        (71, RunDeadLettered(reason="no retries left", attempts=1)),
    )
    skipped = run(
        "job-a",
        "a3",
        (120, RunRequested(trigger="schedule", scheduled_for=at(120))),
        (120, RunSkipped(reason="overlap")),
    )
    manual = run(
        "job-b",
        "b1",
        (10, RunRequested(trigger="manual")),
        (11, RunQueued(queue="gpu")),
        (130, started("w2")),
        (140, RunSucceeded(worker_id="w2", lease_token=1, duration_ms=10_000)),
    )
    cancelled = run(
        "job-b",
        "b2",
        (20, RunRequested(trigger="manual")),
        (21, RunQueued(queue="gpu")),
        (150, RunCancelled(reason="by hand")),
    )
    # The same event twice (one event id): the database refuses the batch holding both,
    # which is then applied one record per transaction; the copy must count nothing.
    duplicate = dataclasses.replace(succeeded[-1])
    workers = [
        worker(0, WorkerRegistered(worker_id="w1", hostname="h", pid=1, tags=(), concurrency=2)),
        worker(30, WorkerRegistered(worker_id="w2", hostname="h", pid=2, tags=(), concurrency=2)),
        worker(180, WorkerLost(worker_id="w2")),
    ]
    runs = succeeded + failed + skipped + manual + cancelled + [duplicate]
    return jobs + sorted(runs + workers, key=lambda e: e.occurred_at)


def project(runtime: Runtime, batch_size: int) -> int:
    events = known_events()
    runtime.log.append([(e.key, runtime.codec.encode(e)) for e in events])
    projector = Projector(runtime.log, runtime.engine, runtime.codec, batch_size=batch_size)

    def drained() -> bool:
        projector.step(timeout=0.05)
        with Session(runtime.engine) as session:
            return sum(read_checkpoints(session).values()) == len(events)

    wait_until(drained)
    projector.close()
    return len(events)


@pytest.fixture(params=[1, 1000], ids=["batch1", "batch1000"])
def projected(request: pytest.FixtureRequest, runtime: Runtime) -> Runtime:
    project(runtime, request.param)
    with Session(runtime.engine) as session:
        rejected = session.scalars(select(EventIndexRecord.rejected)).all()
    assert [r for r in rejected if r] == [
        "unprojectable: the database refused its rows (IntegrityError)"
    ]  # the duplicate, alone, after its batch was refused
    return runtime


def read(engine: Engine, query: Callable[[Session], T]) -> T:
    with Session(engine) as session:
        return query(session)


def test_runs_per_minute_counts_each_status_entered_in_its_minute(projected: Runtime) -> None:
    found = read(projected.engine, lambda s: reads.runs_per_minute(s, B, at(300)))
    assert [(c.bucket, c.width_s) for c in found] == [(m, MINUTE) for m in MINUTES]
    counts = [dataclasses.astuple(c)[2:] for c in found]
    # requested, started, completed, failed, cancelled, skipped, timed_out, lost
    assert counts == [
        (3, 1, 0, 0, 0, 0, 0, 0),
        (1, 1, 1, 1, 0, 0, 0, 0),
        (1, 1, 1, 0, 1, 1, 0, 0),
        (0, 0, 0, 0, 0, 0, 0, 0),
        (0, 0, 0, 0, 0, 0, 0, 0),
    ]
    hourly = read(projected.engine, lambda s: reads.runs_per_minute(s, B, B + timedelta(days=3)))
    assert len(hourly) == 72 and hourly[0].width_s == 3600
    assert dataclasses.astuple(hourly[0])[2:] == (5, 3, 2, 1, 1, 1, 0, 0)


def test_success_rate_is_completed_over_completed_and_failed(projected: Runtime) -> None:
    found = read(projected.engine, lambda s: reads.success_rate(s, B, at(180)))
    assert [(r.completed, r.failed, r.rate) for r in found] == [
        (0, 0, None),
        (1, 1, 0.5),
        (1, 0, 1.0),
    ]


def test_duration_and_lateness_percentiles_per_job(projected: Runtime) -> None:
    durations = read(projected.engine, lambda s: reads.duration_percentiles(s, B, at(3600)))
    _, high5 = bin_bounds(histogram_bin(5_000))
    low60, high60 = bin_bounds(histogram_bin(60_000))
    assert [(p.job_name, p.count, p.mean_ms, p.p50_ms, p.p95_ms) for p in durations] == [
        ("alpha", 2, 32_500, high5, low60 + (high60 - low60) * 0.9),
        ("beta", 1, 10_000, *_single(10_000)),
    ]
    lateness = read(projected.engine, lambda s: reads.lateness_percentiles(s, B, at(3600)))
    _, high2 = bin_bounds(histogram_bin(2_000))
    low5b, high5b = bin_bounds(histogram_bin(5_000))
    assert [(p.job_id, p.count, p.mean_ms, p.p50_ms, p.p95_ms) for p in lateness] == [
        ("job-a", 2, 3_500, high2, low5b + (high5b - low5b) * 0.9)  # manual runs are never late
    ]


def _single(value: int) -> tuple[float, float]:
    low, high = bin_bounds(histogram_bin(value))
    return low + (high - low) * 0.5, low + (high - low) * 0.95


def test_queue_depth_per_queue_at_the_end_of_each_minute(projected: Runtime) -> None:
    found = read(projected.engine, lambda s: reads.queue_depth(s, B, at(300)))
    assert {q.queue: [(p.level, p.added, p.removed) for p in q.points] for q in found} == {
        "default": [(0, 1, 1), (0, 1, 1), (0, 0, 0), (0, 0, 0), (0, 0, 0)],
        "gpu": [(2, 2, 0), (2, 0, 0), (0, 0, 2), (0, 0, 0), (0, 0, 0)],
    }
    # A range starting later begins at the level its earlier minutes left.
    later = read(projected.engine, lambda s: reads.queue_depth(s, at(60), at(120)))
    assert {q.queue: [p.level for p in q.points] for q in later} == {"default": [0], "gpu": [2]}
    assert read(projected.engine, reads.current_queue_depths) == {"default": 0, "gpu": 0}


def test_worker_utilisation_is_busy_slots_over_active_capacity(projected: Runtime) -> None:
    found = read(projected.engine, lambda s: reads.worker_utilisation(s, B, at(300)))
    assert [(u.busy, u.capacity, u.utilisation) for u in found] == [
        (1, 4, 0.25),
        (0, 4, 0.0),
        (0, 4, 0.0),
        (0, 2, 0.0),  # w2 lost
        (0, 2, 0.0),
    ]


def test_a_range_that_is_not_a_range_is_refused_naming_since() -> None:
    with pytest.raises(ValueError, match=r"since: .* is not before until"):
        reads.choose_width(at(60), at(0), (MINUTE,), 10)


def test_replay_builds_the_same_roll_ups_as_live_projection(
    runtime: Runtime, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    project(runtime, batch_size=3)
    if runtime.engine.dialect.name == "postgresql":
        create: Callable[[], str] = request.getfixturevalue("postgres_database")
        url = create()
    else:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    fresh = open_read_model(url, upgrade=True)
    replay(runtime.log, fresh, runtime.codec)  # partition after partition: another order
    live, rebuilt = snapshot(runtime.engine), snapshot(fresh)
    for table in ROLLUP_TABLES:
        assert live[table], table
        assert rebuilt[table] == live[table], table
    assert differences(runtime.engine, fresh) == []
    fresh.dispose()
