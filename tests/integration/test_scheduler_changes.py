"""The scheduler reads only the runs that changed since its last round, and all of them
when it takes the lead (real projector, SQLite and PostgreSQL read models)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from chronolog.wiring import Runtime
from events.model import (
    Event,
    JobCreated,
    JobSpec,
    Payload,
    RunCancelled,
    RunQueued,
    RunRequested,
    RunStarted,
)
from leases.dispatch import finished_flag, run_lease_key
from projector.scheduler_reads import JobCache, runs_changed_since
from projector.tables import RunRecord
from scheduler.gather import gather
from scheduler.loop import Scheduler, SchedulerConfig
from scheduler.open_runs import OpenRuns

JOB = "job-changes"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


def _event(payload: Payload, run_id: str | None = None) -> Event:
    return Event(payload=payload, occurred_at=T0, actor="test", job_id=JOB, run_id=run_id)


def _project(rt: Runtime, events: Sequence[Event]) -> None:
    positions = rt.log.append([(e.key, rt.codec.encode(e)) for e in events])
    assert rt.progress.wait_for(positions, timeout=10)


def _refresh(rt: Runtime, view: OpenRuns) -> int:
    checkpoints = rt.progress.checkpoints()  # before the read, as the loop does
    with Session(rt.engine) as session:
        return view.refresh(session, checkpoints, datetime.now(UTC))


def _statuses(view: OpenRuns) -> dict[str, str]:
    return {run.view.run_id: run.view.status for run in view.runs}


def _insert_unstamped(rt: Runtime, run_id: str) -> None:
    """A pending run row without a change position: what a row written before migration
    0009 looks like, and a change the incremental read cannot see."""
    row = {
        "id": run_id,
        "job_id": JOB,
        "status": "pending",
        "trigger": "manual",
        "attempt": 1,
        "parameters": {},
        "priority": 0,
        "requested_at": T0,
        "dead_lettered": False,
        "cancel_requested": False,
    }
    with Session(rt.engine) as session, session.begin():
        session.execute(insert(RunRecord), [row])


def _job() -> Event:
    return _event(JobCreated(JobSpec(name="changes", type="shell", command="true")))


def test_a_round_after_the_full_read_reads_only_what_changed(running: Runtime) -> None:
    _project(running, [_job(), _event(RunRequested(trigger="manual"), "run-a")])
    view = OpenRuns(full_read_interval=timedelta(hours=1))
    assert _refresh(running, view) == 1
    assert _statuses(view) == {"run-a": "pending"}

    _project(running, [_event(RunQueued(queue="default"), "run-a")])
    _project(running, [_event(RunRequested(trigger="manual"), "run-b")])
    assert _refresh(running, view) == 2  # the two changed rows, nothing else
    assert _statuses(view) == {"run-a": "queued", "run-b": "pending"}
    assert {run.view.run_id: run.queue for run in view.runs}["run-a"] == "default"

    _project(running, [_event(RunCancelled(reason="test"), "run-a")])
    assert _refresh(running, view) == 1
    assert _statuses(view) == {"run-b": "pending"}  # a run that ended leaves the view
    assert _refresh(running, view) == 0  # nothing changed, nothing read


def test_the_incremental_read_misses_unstamped_rows_until_a_full_read(running: Runtime) -> None:
    _project(running, [_job(), _event(RunRequested(trigger="manual"), "run-a")])
    view = OpenRuns(full_read_interval=timedelta(hours=1))
    _refresh(running, view)
    _insert_unstamped(running, "run-old")
    assert _refresh(running, view) == 0
    assert "run-old" not in _statuses(view)
    view.forget()
    assert _refresh(running, view) == 2
    assert _statuses(view) == {"run-a": "pending", "run-old": "pending"}


def _queued_ids(rt: Runtime) -> set[str]:
    partition = rt.log.partition_for(JOB)
    events = (rt.codec.decode(r.value) for r in rt.log.read(partition, 0, 1000))
    return {e.run_id for e in events if isinstance(e.payload, RunQueued) and e.run_id}


def _scheduler(rt: Runtime, node: str) -> Scheduler:
    config = SchedulerConfig(node_id=node, full_read_interval=3600.0)
    return Scheduler(config, rt.log, rt.codec, rt.engine, leases=rt.leases, progress=rt.progress)


def test_a_new_leader_reads_every_open_run_again(running: Runtime) -> None:
    _project(running, [_job()])
    first = _scheduler(running, "first")
    first.step()
    assert first.is_leader
    _insert_unstamped(running, "run-old")
    first.step()
    assert "run-old" not in _queued_ids(running)  # the leader's rounds read changes only

    stopped = threading.Event()
    stopped.set()
    first.run(stopped)  # resigns at once
    assert not first.is_leader

    second = _scheduler(running, "second")
    second.step()
    assert second.is_leader
    assert "run-old" in _queued_ids(running)  # its first round read everything


def test_a_running_run_whose_attempt_finished_is_not_taken_for_lost(running: Runtime) -> None:
    """Its worker appended the outcome and released the lease, raising the attempt's
    finished flag; the projector has not applied the outcome yet."""
    starts = [
        _event(payload, run_id)
        for run_id in ("run-done", "run-gone")
        for payload in (
            RunRequested(trigger="manual"),
            RunQueued(queue="default"),
            RunStarted("w1", 7),
        )
    ]
    _project(running, [_job(), *starts])
    running.leases.set_flag(finished_flag("run-done", 1), 60)
    view = OpenRuns(full_read_interval=timedelta(hours=1))
    _refresh(running, view)
    with Session(running.engine) as session:
        gathered = gather(session, running.leases, T0, JobCache(), view)
    assert gathered.snapshot.live_run_leases == {run_lease_key("run-done")}


def test_the_changed_runs_are_found_whichever_partitions_were_seen(running: Runtime) -> None:
    """Partitions the previous round had no checkpoint for count whole, others from
    their checkpoint on; the query finds them as index ranges between the seen ones."""
    runs = [_event(RunRequested(trigger="manual"), f"run-{i}") for i in range(30)]
    _project(running, [_job(), *runs])
    with Session(running.engine) as session:
        stamped = session.execute(
            select(RunRecord.id, RunRecord.change_partition, RunRecord.change_offset)
        ).all()
    rows = [
        (run_id, p, offset) for run_id, p, offset in stamped if p is not None and offset is not None
    ]
    assert len(rows) == len(stamped) == 30
    partition = rows[0][1]  # one job: every run row is in its partition
    offsets = sorted(offset for _, _, offset in rows)
    middle = offsets[len(offsets) // 2]
    for seen in (
        {},
        {partition: middle},
        {partition: offsets[-1] + 1},
        {partition - 1: 0, partition + 1: 0},  # around it: its rows all count
        {partition - 2: 0, partition: middle, partition + 3: 5},
        {partition + 1: 0},
    ):
        expected = {run_id for run_id, p, offset in rows if p not in seen or offset >= seen[p]}
        with Session(running.engine) as session:
            found = {state.run.run_id for state in runs_changed_since(session, seen)}
        assert found == expected, seen


def test_a_replaced_queued_run_is_taken_off_its_queue_and_cancelled(running: Runtime) -> None:
    """``replace``: the scheduler cancels the queued run a new request replaces; the run
    still waits in its queue (the queue it was queued on, looked up from the open runs),
    so it is taken off it and cancelled at once, and nobody can run it."""
    spec = JobSpec(name="changes", type="shell", command="true", concurrency_policy="replace")
    _project(running, [_event(JobCreated(spec)), _event(RunRequested(trigger="manual"), "run-a")])
    scheduler = _scheduler(running, "leader")
    scheduler.step()
    assert "run-a" in _queued_ids(running)
    _project(running, [_event(RunRequested(trigger="manual"), "run-b")])
    scheduler.step()  # decides the cancel of run-a
    partition = running.log.partition_for(JOB)
    events = [running.codec.decode(r.value) for r in running.log.read(partition, 0, 1000)]
    cancelled = [e.run_id for e in events if isinstance(e.payload, RunCancelled)]
    assert cancelled == ["run-a"]
    assert not running.leases.remove("default", "run-a")  # no longer in its queue
