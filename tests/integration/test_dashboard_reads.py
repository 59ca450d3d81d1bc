"""The dashboard's job reads on the embedded SQLite read model and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from chronolog.wiring import open_read_model
from events.model import JobSpec
from projector.activity import JobActivity
from projector.bulk import insert_rows
from projector.dashboard_reads import (
    JobFilters,
    JobSort,
    SuccessCount,
    finished_samples,
    job_detail,
    job_history,
    job_page,
    job_tags,
    recent_runs,
    success_counts,
)
from projector.fold import Changes
from projector.job_projection import JobRow
from projector.rows import write_activity, write_jobs, write_runs
from projector.run_projection import RunRow
from projector.tables import EventIndexRecord, core_table

T0 = datetime(2026, 12, 1, tzinfo=UTC)
ALL = JobFilters()
BY_NAME = JobSort()


def _job(name: str, **spec: Any) -> JobRow:
    fields: dict[str, Any] = {"type": "shell", "command": "true"} | spec
    job_spec = JobSpec(name=name, **fields)
    return JobRow(id=f"id-{name}", spec=job_spec, created_at=T0, updated_at=T0, version=1)


def _run(job: str, n: int, status: str, duration_ms: int | None = None) -> RunRow:
    at = T0 + timedelta(minutes=n)
    finished = at + timedelta(seconds=1) if status in ("completed", "failed") else None
    return RunRow(
        id=f"run-{job}-{n:03d}",
        job_id=f"id-{job}",
        status=status,  # type: ignore[arg-type]
        trigger="manual",
        attempt=1,
        requested_at=at,
        finished_at=finished,
        duration_ms=duration_ms,
    )


@pytest.fixture
def engine(read_model_url: str) -> Iterator[Engine]:
    engine = open_read_model(read_model_url)
    jobs = [
        _job("alpha", tags=("reports",), schedule="0 3 * * *", timezone="Europe/Paris"),
        _job("beta", type="python", command=None, function="m:f", schedule="every 1h"),
        _job("gamma", enabled=False, depends_on=("id-alpha", "id-gone")),
        _job("Delta_x", tags=("reports", "etl")),
    ]
    runs = [_run("alpha", n, "completed" if n % 4 else "failed", n * 10) for n in range(1, 151)]
    runs += [_run("alpha", 200, "running"), _run("beta", 1, "completed", 5)]
    activity = [
        JobActivity(
            "id-alpha",
            last_run_id="run-alpha-200",
            last_run_status="running",
            last_run_at=T0 + timedelta(minutes=200),
        ),
        JobActivity(
            "id-beta",
            last_run_id="run-beta-001",
            last_run_status="completed",
            last_run_at=T0 + timedelta(minutes=1),
        ),
    ]
    events = [
        {
            "partition": 3,
            "offset": n,
            "event_id": f"e{n}",
            "type": "RunRequested",
            "job_id": "id-alpha",
            "run_id": None,
            "attempt": None,
            "occurred_at": T0 + timedelta(seconds=n),
            "actor": "alice" if n % 2 else "api",
            "correlation_id": None,
            "causation_id": None,
            "payload": {"n": n},
            "rejected": None,
            "actor_role": "operator" if n % 2 else None,
        }
        for n in range(7)
    ]
    with Session(engine) as session, session.begin():
        write_jobs(session, Changes(jobs))
        write_runs(session, Changes(runs))
        write_activity(session, Changes(activity))
        insert_rows(session, core_table(EventIndexRecord), events)
    yield engine
    engine.dispose()


def test_the_job_list_filters_sorts_and_pages_in_the_database(engine: Engine) -> None:
    with Session(engine) as session:

        def names(
            filters: JobFilters = ALL,
            sort: JobSort = BY_NAME,
            offset: int = 0,
            limit: int = 10,
        ) -> list[str]:
            return [item.name for item in job_page(session, filters, sort, offset, limit).items]

        assert names() == ["Delta_x", "alpha", "beta", "gamma"]
        assert names(offset=1, limit=2) == ["alpha", "beta"]
        assert job_page(session, JobFilters(), JobSort(), 1, 2).total == 4
        assert names(JobFilters(tag="reports")) == ["Delta_x", "alpha"]
        assert names(JobFilters(type="python")) == ["beta"]
        assert names(JobFilters(status="paused")) == ["gamma"]
        assert names(JobFilters(status="active", schedule_type="cron")) == ["alpha"]
        assert names(JobFilters(q="DELTA_")) == ["Delta_x"]  # any case; _ is no wildcard
        assert names(JobFilters(q="l_")) == []  # escaped: would match alpha, Delta
        # never run last, both ways, on both databases
        assert names(sort=JobSort("last_run_at", descending=True)) == [
            "alpha",
            "beta",
            "Delta_x",
            "gamma",
        ]
        assert names(sort=JobSort("last_run_at")) == ["beta", "alpha", "Delta_x", "gamma"]
        assert names(sort=JobSort("status"))[-1] == "gamma"
        item = job_page(session, JobFilters(q="alpha"), JobSort(), 0, 1).items[0]
        assert (item.last_run_status, item.schedule_type, item.timezone) == (
            "running",
            "cron",
            "Europe/Paris",
        )
        assert job_tags(session) == ["etl", "reports"]


def test_samples_are_the_newest_finished_runs_of_each_job_bounded(engine: Engine) -> None:
    with Session(engine) as session:
        samples = finished_samples(session, ["id-alpha", "id-beta", "id-gamma"], 100)

    assert len(samples["id-alpha"]) == 100  # of 150 finished; the running one is not one
    assert samples["id-alpha"][0].requested_at == T0 + timedelta(minutes=150)
    assert samples["id-alpha"][-1].requested_at == T0 + timedelta(minutes=51)
    assert samples["id-alpha"][0].finished_at is not None
    assert samples["id-alpha"][0].finished_at.tzinfo is not None
    assert [s.status for s in samples["id-beta"]] == ["completed"]
    assert samples["id-gamma"] == []


def test_success_counts_count_what_the_samples_hold(engine: Engine) -> None:
    jobs = ["id-alpha", "id-beta", "id-gamma"]
    with Session(engine) as session:
        samples = finished_samples(session, jobs, 100)
        counts = success_counts(session, jobs, 100)

    for job_id in jobs:
        completed = sum(1 for s in samples[job_id] if s.status == "completed")
        assert counts[job_id] == SuccessCount(completed, len(samples[job_id])), job_id
    assert counts["id-alpha"].finished == 100
    assert counts["id-gamma"] == SuccessCount(0, 0)


def test_the_job_page_reads(engine: Engine) -> None:
    with Session(engine) as session:
        gamma = job_detail(session, "gamma")
        alpha = job_detail(session, "id-alpha")  # by id too
        runs = recent_runs(session, "id-alpha", 20)
        newest = job_history(session, "id-alpha", 3)
        older = job_history(session, "id-alpha", 3, (newest[-1].partition, newest[-1].offset))
        missing = job_detail(session, "nope")

    assert gamma is not None and alpha is not None and missing is None
    assert gamma.depends_on == ["alpha", "id-gone"]  # a vanished job shows its id
    assert alpha.dependents == ["gamma"]
    assert alpha.last_run_status == "running"
    assert [r.id for r in runs[:2]] == ["run-alpha-200", "run-alpha-150"]
    assert len(runs) == 20
    assert [e.offset for e in newest] == [6, 5, 4]
    assert [e.offset for e in older] == [3, 2, 1]
    assert older[0].payload == {"n": 3}
    assert [(e.actor, e.actor_role) for e in older] == [
        ("alice", "operator"),
        ("api", None),
        ("alice", "operator"),
    ]
