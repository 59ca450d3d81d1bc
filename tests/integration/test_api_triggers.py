"""Triggers acknowledged once durable, and the batch trigger ``POST /api/runs`` (issue
11, item 2), against the real log and read model. No scheduler runs: runs stay pending,
but those the API queues itself (an ``allow`` job with no limit)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.app import create_app
from api.schemas import MAX_BATCH_RUNS
from chronolog.serving import api_context
from chronolog.wiring import Runtime, start_projector
from eventlog.port import EventLog, LogConsumer, LogRecord, Position, Watermarks
from events.ids import idempotency_run_id
from events.model import RunRequested
from scheduler.dispatch import Dispatcher
from scheduler.loop import Scheduler, SchedulerConfig
from tests.conftest import wait_until

SHELL = {"type": "shell", "command": "true"}
UNLIMITED = {"concurrency_policy": "allow", "max_concurrency": None}


class CountingLog(EventLog):
    """The real log, counting the records of each ``append`` call (one durable write each)."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self.appends: list[int] = []

    @property
    def partitions(self) -> int:
        return self._log.partitions

    def append(self, records: Sequence[tuple[str, bytes]]) -> list[Position]:
        self.appends.append(len(records))
        return self._log.append(records)

    def read(self, partition: int, offset: int, limit: int = 1000) -> list[LogRecord]:
        return self._log.read(partition, offset, limit)

    def watermarks(self, partition: int) -> Watermarks:
        return self._log.watermarks(partition)

    def consumer(self, group: str) -> LogConsumer:
        return self._log.consumer(group)


@contextmanager
def projecting(runtime: Runtime) -> Iterator[None]:
    stop = threading.Event()
    thread = start_projector(runtime, stop)
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()


@pytest.fixture
def counted(running: Runtime) -> Iterator[tuple[TestClient, CountingLog]]:
    log = CountingLog(running.log)
    context = dataclasses.replace(api_context(running), log=log)
    with TestClient(create_app(context)) as client:
        yield client, log


def requested(runtime: Runtime) -> list[tuple[str | None, str | None]]:
    """(run id, idempotency key) of every ``RunRequested`` in the log, in log order."""
    found = []
    for partition in range(runtime.log.partitions):
        for record in runtime.log.read(partition, 0, 100_000):
            event = runtime.codec.decode(record.value)
            if isinstance(event.payload, RunRequested):
                found.append((event.run_id, event.payload.idempotency_key))
    return found


def make_job(client: TestClient, name: str, **fields: Any) -> str:
    answer = client.post("/api/jobs", json={"name": name, **SHELL, **fields})
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def test_a_trigger_answers_pending_and_its_run_reads_back(
    counted: tuple[TestClient, CountingLog], running: Runtime
) -> None:
    client, log = counted
    job_id = make_job(client, "nightly", parameters={"a": 1, "b": 1})
    log.appends.clear()
    answer = client.post("/api/jobs/nightly/trigger", json={"parameters": {"b": 2}})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["job_id"], body["status"], body["reason"]) == (job_id, "pending", None)
    assert answer.headers["location"] == f"/api/runs/{body['run_id']}"
    assert log.appends == [1]  # its RunRequested, and nothing was waited for
    run = client.get(answer.headers["location"])
    assert run.status_code == 200, run.text
    assert (run.json()["status"], run.json()["parameters"]) == ("pending", {"a": 1, "b": 2})
    assert client.get(f"/api/runs/{body['run_id']}/events").json()["total"] == 1


def test_the_same_key_answers_the_same_run_before_and_after_projection(runtime: Runtime) -> None:
    context = api_context(runtime)
    with TestClient(create_app(context)) as client:
        with projecting(runtime):
            job_id = make_job(client, "keyed")
        # The projector is stopped: the read model will not show the run.
        headers = {"Idempotency-Key": "k-1"}
        first = client.post("/api/jobs/keyed/trigger", headers=headers)
        assert first.status_code == 201, first.text
        run_id = first.json()["run_id"]
        assert run_id == idempotency_run_id(job_id, "k-1")
        again = client.post("/api/jobs/keyed/trigger", headers=headers, json={"parameters": {}})
        assert again.status_code == 200, again.text
        assert (again.json()["run_id"], again.json()["status"]) == (run_id, "pending")
        assert requested(runtime) == [(run_id, "k-1")]  # this process appended it once
    # Another API process does not know this one accepted it: it appends it again, with
    # the same derived run id, and the projection inserts that id once.
    with TestClient(create_app(api_context(runtime))) as other:
        elsewhere = other.post("/api/jobs/keyed/trigger", headers=headers)
        assert elsewhere.json()["run_id"] == run_id
        assert requested(runtime) == [(run_id, "k-1"), (run_id, "k-1")]
        with projecting(runtime):
            url = f"/api/runs/{run_id}/events"
            wait_until(lambda: other.get(url).json()["total"] == 2)
            events = other.get(url).json()["events"]
            assert [e["rejected"] for e in events] == [None, f"run {run_id} was already requested"]
            listed = other.get("/api/runs", params={"job_id": "keyed"}).json()
            assert [r["id"] for r in listed["runs"]] == [run_id]
        with TestClient(create_app(api_context(runtime))) as third:
            late = third.post("/api/jobs/keyed/trigger", headers=headers)
            assert late.status_code == 200, late.text  # from the read model now
            assert late.json()["status"] == "pending"
            assert requested(runtime) == [(run_id, "k-1"), (run_id, "k-1")]


def test_a_read_of_an_accepted_run_waits_for_the_read_model(runtime: Runtime) -> None:
    context = dataclasses.replace(api_context(runtime), ryw_timeout=0.2)
    with TestClient(create_app(context)) as client:
        with projecting(runtime):
            make_job(client, "waited")
        run_id = client.post("/api/jobs/waited/trigger").json()["run_id"]
        lagging = client.get(f"/api/runs/{run_id}")
        assert lagging.status_code == 503, lagging.text  # accepted, not projected: not a 404
        assert "does not show it yet" in lagging.json()["message"]
        assert client.get("/api/runs/run-unknown").status_code == 404
        with projecting(runtime):
            assert client.get(f"/api/runs/{run_id}").json()["status"] == "pending"


def test_a_batch_answers_in_order_with_one_append(
    counted: tuple[TestClient, CountingLog], running: Runtime
) -> None:
    client, log = counted
    a, b = make_job(client, "batch-a"), make_job(client, "batch-b", parameters={"x": 0})
    log.appends.clear()
    body = {
        "runs": [
            {"job": "batch-b", "parameters": {"x": 1}},
            {"job": a},
            {"job": "batch-b", "idempotency_key": "once"},
            {"job": "batch-a", "idempotency_key": "once"},  # another job: another run
            {"job": b, "idempotency_key": "once"},  # b's "once" again: the same run
        ]
    }
    answer = client.post("/api/runs", json=body)
    assert answer.status_code == 201, answer.text
    runs = answer.json()["runs"]
    assert [(r["job_id"], r["status"], r["created"]) for r in runs] == [
        (b, "pending", True),
        (a, "pending", True),
        (b, "pending", True),
        (a, "pending", True),
        (b, "pending", False),
    ]
    assert runs[2]["run_id"] == runs[4]["run_id"] == idempotency_run_id(b, "once")
    assert runs[3]["run_id"] == idempotency_run_id(a, "once")
    assert len({r["run_id"] for r in runs}) == 4
    assert log.appends == [4]  # four runs, one durable write
    first = client.get(f"/api/runs/{runs[0]['run_id']}").json()
    assert first["parameters"] == {"x": 1}
    # Across batches: the keys name the runs made before, and nothing is appended.
    replay = client.post("/api/runs", json={"runs": [body["runs"][3], body["runs"][2]]})
    assert replay.status_code == 200, replay.text
    assert [r["run_id"] for r in replay.json()["runs"]] == [runs[3]["run_id"], runs[2]["run_id"]]
    assert [r["created"] for r in replay.json()["runs"]] == [False, False]
    assert log.appends == [4]


def test_a_batch_of_a_thousand_is_taken_and_one_more_refused(
    counted: tuple[TestClient, CountingLog], running: Runtime
) -> None:
    client, log = counted
    make_job(client, "fan-out")
    log.appends.clear()
    many = [{"job": "fan-out", "parameters": {"i": i}} for i in range(MAX_BATCH_RUNS)]
    answer = client.post("/api/runs", json={"runs": many})
    assert answer.status_code == 201, answer.text
    assert len({r["run_id"] for r in answer.json()["runs"]}) == MAX_BATCH_RUNS
    assert log.appends == [MAX_BATCH_RUNS]
    params: dict[str, str | int] = {"job_id": "fan-out", "limit": 1}
    wait_until(lambda: client.get("/api/runs", params=params).json()["total"] == MAX_BATCH_RUNS)
    too_many = client.post("/api/runs", json={"runs": [*many, {"job": "fan-out"}]})
    assert too_many.status_code == 422, too_many.text
    assert [e["field"] for e in too_many.json()["errors"]] == ["runs"]
    empty = client.post("/api/runs", json={"runs": []})
    assert empty.status_code == 422, empty.text
    assert log.appends == [MAX_BATCH_RUNS]


def test_a_bad_item_refuses_the_whole_batch_naming_its_field(
    counted: tuple[TestClient, CountingLog], running: Runtime
) -> None:
    client, log = counted
    make_job(client, "checked")
    log.appends.clear()
    good = {"job": "checked"}
    cases = [
        ({"job": "nope"}, "runs[1].job", "no job with id or name 'nope'"),
        ({"job": "checked", "parameters": {"api_key": "s3cret"}}, "runs[1].parameters.api_key", ""),
        ({"job": "checked", "parameters": {"n": 2**64}}, "runs[1].parameters.n", ""),
        ({"job": "checked", "parameters": {"t": "a\x00b"}}, "runs[1].parameters.t", ""),
        ({"job": "checked", "colour": "red"}, "runs[1].colour", "unknown field"),
        ({"job": "checked", "idempotency_key": ""}, "runs[1].idempotency_key", ""),
        ({"parameters": {}}, "runs[1].job", "required"),
    ]
    for item, field, reason in cases:
        answer = client.post("/api/runs", json={"runs": [good, item, good]})
        assert answer.status_code == 422, (item, answer.text)
        errors = answer.json()["errors"]
        assert [e["field"] for e in errors] == [field], (item, errors)
        assert reason in errors[0]["reason"]
    assert log.appends == []  # all or nothing: not even the good items
    assert client.get("/api/runs", params={"job_id": "checked"}).json()["total"] == 0


def test_a_single_trigger_still_refuses_an_unknown_job_and_plain_secrets(
    client: TestClient,
) -> None:
    assert client.post("/api/jobs/nope/trigger").status_code == 404
    make_job(client, "secretive")
    answer = client.post(
        "/api/jobs/secretive/trigger", json={"parameters": {"password": "hunter2"}}
    )
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["parameters.password"]


# --- runs admitted without state: queued by the API itself -------------------------


def run_events(runtime: Runtime, run_id: str) -> list[str]:
    """The types of the run's events in the log, in log order."""
    found = []
    for partition in range(runtime.log.partitions):
        for record in runtime.log.read(partition, 0, 100_000):
            event = runtime.codec.decode(record.value)
            if event.run_id == run_id:
                found.append(event.type)
    return found


def test_a_trigger_of_an_unlimited_allow_job_is_queued_in_its_append_and_pushed(
    counted: tuple[TestClient, CountingLog], running: Runtime
) -> None:
    client, log = counted
    make_job(client, "fan", **UNLIMITED, queue="io", priority=3)
    log.appends.clear()
    answer = client.post("/api/jobs/fan/trigger", json={"parameters": {"n": 1}})
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["run_id"]
    assert answer.json()["status"] == "queued"
    assert log.appends == [2]  # RunRequested and RunQueued, one durable write
    assert run_events(running, run_id) == ["RunRequested", "RunQueued"]
    assert running.leases.queued_ids("io") == {run_id}  # pushed, no scheduler running
    run = client.get(f"/api/runs/{run_id}").json()  # waits for the RunQueued it answered
    assert (run["status"], run["parameters"]) == ("queued", {"n": 1})


def test_a_paused_unlimited_job_still_queues_a_manual_trigger(
    client: TestClient, running: Runtime
) -> None:
    make_job(client, "paused-fan", **UNLIMITED)
    assert client.post("/api/jobs/paused-fan/pause").status_code == 200
    answer = client.post("/api/jobs/paused-fan/trigger")
    assert answer.json()["status"] == "queued", answer.text


def test_a_batch_queues_only_the_runs_admitted_without_state(
    counted: tuple[TestClient, CountingLog], running: Runtime
) -> None:
    client, log = counted
    make_job(client, "free", **UNLIMITED)
    make_job(client, "capped", concurrency_policy="allow", max_concurrency=10_000)
    make_job(client, "waits", concurrency_policy="queue", max_concurrency=None)
    log.appends.clear()
    body = {
        "runs": [
            {"job": "free"},
            {"job": "capped"},
            {"job": "waits"},
            {"job": "free", "idempotency_key": "k"},
            {"job": "free", "idempotency_key": "k"},
        ]
    }
    runs = client.post("/api/runs", json=body).json()["runs"]
    assert [(r["status"], r["created"]) for r in runs] == [
        ("queued", True),
        ("pending", True),
        ("pending", True),
        ("queued", True),
        ("queued", False),
    ]
    assert log.appends == [6]  # 4 runs, 2 of them queued too: one durable write
    assert running.leases.queued_ids("default") == {runs[0]["run_id"], runs[3]["run_id"]}
    replay = client.post("/api/runs", json={"runs": [body["runs"][3]]}).json()["runs"]
    assert (replay[0]["status"], replay[0]["created"]) == ("queued", False)
    assert log.appends == [6]


def test_the_scheduler_neither_queues_nor_pushes_a_run_the_api_queued(
    client: TestClient, running: Runtime
) -> None:
    make_job(client, "once", **UNLIMITED)
    run_id = client.post("/api/jobs/once/trigger").json()["run_id"]
    wait_until(lambda: client.get(f"/api/runs/{run_id}").json()["status"] == "queued")
    config = SchedulerConfig(node_id="test", full_read_interval=3600.0)
    leases, progress = running.leases, running.progress
    scheduler = Scheduler(
        config, running.log, running.codec, running.engine, leases=leases, progress=progress
    )
    scheduler.step()
    scheduler.step()
    assert scheduler.is_leader
    assert run_events(running, run_id) == ["RunRequested", "RunQueued"]
    popped = leases.pop(["default"], 0.1)
    assert popped is not None and popped[1].id == run_id
    assert leases.pop(["default"], 0.1) is None  # pushed once


def test_a_queued_run_missing_from_its_queue_is_pushed_again_by_reconciliation(
    client: TestClient, running: Runtime
) -> None:
    """What recovers a run whose push failed after its append: its queue lost it."""
    make_job(client, "lost-push", **UNLIMITED)
    run_id = client.post("/api/jobs/lost-push/trigger").json()["run_id"]
    wait_until(lambda: client.get(f"/api/runs/{run_id}").json()["status"] == "queued")
    popped = running.leases.pop(["default"], 0.1)
    assert popped is not None and popped[1].id == run_id
    later = api_context(running).clock() + timedelta(seconds=3)  # past the grace
    with Session(running.engine) as session:
        assert Dispatcher(running.leases).reconcile(session, later) == 1
    assert running.leases.queued_ids("default") == {run_id}
