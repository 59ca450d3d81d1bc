"""The runs, run, workers and DAG pages' reads, on events projected by the real projector
into SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from chronolog.wiring import Runtime
from events.model import (
    Event,
    JobCreated,
    JobSpec,
    Payload,
    RunFailed,
    RunQueued,
    RunRequested,
    RunStarted,
    RunSucceeded,
    WorkerLost,
    WorkerRegistered,
)
from projector.batch import read_checkpoints
from projector.dashboard_reads import (
    RunFilters,
    dag_graph,
    job_id_by_name,
    recent_pipelines,
    run_detail,
    runs_page,
    runs_total,
    workers_overview,
)
from tests.conftest import wait_until

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
LONELY_RUNS = 25


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def job(job_id: str, name: str, *depends_on: str) -> Event:
    spec = JobSpec(name=name, type="shell", command="true", depends_on=depends_on)
    return Event(payload=JobCreated(spec), occurred_at=T0, actor="api", job_id=job_id)


def run(
    job_id: str, run_id: str, second: float, *payloads: Payload, correlation: str | None = None
) -> list[Event]:
    requested = RunRequested(trigger="dependency" if correlation else "manual")
    steps: list[Payload] = [requested, *payloads]
    return [
        Event(
            payload=payload,
            occurred_at=at(second + index * 0.001),
            actor="test",
            job_id=job_id,
            run_id=run_id,
            attempt=1,
            correlation_id=correlation or run_id,
            actor_role="operator" if index == 0 else None,  # requested by an API caller
        )
        for index, payload in enumerate(steps)
    ]


def worker(payload: Payload, worker_id: str) -> Event:
    return Event(payload=payload, occurred_at=T0, actor=worker_id)


def history() -> list[Event]:
    events = [
        job("j-extract", "extract"),
        job("j-load", "load", "j-extract"),
        job("j-report", "report", "j-load"),
        job("j-lonely", "lonely"),
        worker(WorkerRegistered("w-1", "host-a", 11, ("default", "gpu"), 4), "w-1"),
        worker(WorkerRegistered("w-2", "host-b", 12, ("default",), 2), "w-2"),
        worker(WorkerLost("w-2"), "w-2"),
    ]
    for index in range(LONELY_RUNS):  # pairs share a requested time: the id breaks ties
        events += run("j-lonely", f"lonely-{index:02d}", index // 2)
    queued, started = RunQueued(queue="default"), RunStarted("w-1", 7)
    done = RunSucceeded("w-1", 7, duration_ms=1500, stdout="rows: 3\n")
    events += run("j-extract", "pipe-extract", 100, queued, started, done)
    events += run(
        "j-load", "pipe-load", 101, queued, RunStarted("w-1", 8), correlation="pipe-extract"
    )
    failed = RunFailed("w-1", 9, duration_ms=20, error="boom", exit_code=2)
    events += run("j-report", "old-report", 50, queued, RunStarted("w-1", 9), failed)
    return events


@pytest.fixture
def projected(running: Runtime) -> Runtime:
    events = history()
    running.log.append([(e.key, running.codec.encode(e)) for e in events])

    def applied() -> bool:
        with Session(running.engine) as session:
            return sum(read_checkpoints(session).values()) == len(events)

    wait_until(applied, timeout=20)
    return running


def test_runs_page_by_page_follow_each_other_newest_first(projected: Runtime) -> None:
    with Session(projected.engine) as session:
        everything = runs_page(session, RunFilters(), limit=100)
        pages = [runs_page(session, RunFilters(), limit=7)]
        while len(pages[-1]) == 7:
            pages.append(runs_page(session, RunFilters(), limit=7, after=pages[-1][-1].key))
        from_a_key = runs_page(session, RunFilters(), limit=3, after=everything[4].key, skip=2)

    keys = [(r.requested_at, r.id) for r in everything]
    assert len(everything) == LONELY_RUNS + 3
    assert keys == sorted(keys, reverse=True)
    assert [r.id for page in pages for r in page] == [r.id for r in everything]
    assert [r.id for r in from_a_key] == [r.id for r in everything[7:10]]
    assert everything[0].id == "pipe-load" and everything[0].job_name == "load"


def test_runs_filter_by_status_job_trigger_and_time(projected: Runtime) -> None:
    with Session(projected.engine) as session:
        lonely = job_id_by_name(session, "lonely")
        by_job = runs_page(session, RunFilters(job_id=lonely), limit=100)
        failed = runs_page(session, RunFilters(status="failed"), limit=100)
        failing = runs_page(session, RunFilters(status="failing"), limit=100)
        dependency = runs_page(session, RunFilters(trigger="dependency"), limit=100)
        window = RunFilters(since=at(2), until=at(4))
        in_window = runs_page(session, window, limit=100)
        total_window = runs_total(session, window)
        capped = runs_total(session, RunFilters(), cap=10)
        exact = runs_total(session, RunFilters(job_id=lonely), cap=LONELY_RUNS)

    assert lonely == "j-lonely" and len(by_job) == LONELY_RUNS
    assert failed == [] and [r.id for r in failing] == ["old-report"]
    assert [r.id for r in dependency] == ["pipe-load"]
    assert [r.id for r in in_window] == ["lonely-07", "lonely-06", "lonely-05", "lonely-04"]
    assert (total_window.count, total_window.capped) == (4, False)
    assert (capped.count, capped.capped) == (10, True)
    assert (exact.count, exact.capped) == (LONELY_RUNS, False)


def test_a_run_comes_with_its_attempts_job_and_events(projected: Runtime) -> None:
    with Session(projected.engine) as session:
        detail = run_detail(session, "pipe-extract")
        missing = run_detail(session, "no-such-run")

    assert missing is None
    assert detail is not None and detail.job_name == "extract"
    assert detail.run.status == "completed" and detail.run.stdout == "rows: 3\n"
    assert [(a.worker_id, a.lease_token, a.duration_ms) for a in detail.run.attempts] == [
        ("w-1", 7, 1500)
    ]
    types = [e.type for e in detail.events]
    assert types == ["RunRequested", "RunQueued", "RunStarted", "RunSucceeded"]
    assert [e.actor_role for e in detail.events] == ["operator", None, None, None]


def test_workers_alive_first_with_their_running_runs(projected: Runtime) -> None:
    with Session(projected.engine) as session:
        workers = workers_overview(session)

    assert [(w.worker.id, w.worker.status, w.active_runs) for w in workers] == [
        ("w-1", "active", 1),
        ("w-2", "lost", 0),
    ]
    assert workers[0].worker.tags == ("default", "gpu") and workers[0].utilisation == 0.25


def test_the_dag_by_last_runs_and_by_one_pipeline(projected: Runtime) -> None:
    with Session(projected.engine) as session:
        graph = dag_graph(session)
        pipeline = dag_graph(session, "pipe-extract")
        pipelines = recent_pipelines(session)

    statuses = {node.name: node.status for node in graph.nodes}
    assert statuses == {"extract": "completed", "load": "running", "report": "failing"}
    assert set(graph.edges) == {("j-extract", "j-load"), ("j-load", "j-report")}
    assert graph.unconnected == 1  # lonely
    in_pipeline = {node.name: node.status for node in pipeline.nodes}
    assert in_pipeline == {"extract": "completed", "load": "running", "report": None}
    assert pipelines == ["pipe-extract"]
