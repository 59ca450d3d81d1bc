"""``GET /api/changes`` over a real API server (uvicorn), real log and projector, on the
embedded SQLite read model and on PostgreSQL. No scheduler or worker runs: the tests
append their outcome events to the log themselves, as those roles would."""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn

from api.app import create_app
from api.change_messages import covers, parse_position
from api.context import ApiContext
from chronolog.serving import api_context
from chronolog.wiring import Runtime
from events.model import (
    Event,
    Payload,
    RunQueued,
    RunStarted,
    RunSucceeded,
    WorkerRegistered,
)
from tests.conftest import wait_until
from tests.services.ports import free_port

LIMIT = 3  # change streams per process in these tests
READ_TIMEOUT = 10.0  # seconds a test waits for the next message: its deadline


@dataclass(frozen=True)
class Served:
    url: str
    context: ApiContext
    runtime: Runtime

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=READ_TIMEOUT)


@pytest.fixture
def served(running: Runtime) -> Iterator[Served]:
    """The API on a free port, with a short tailer poll and no wait for a scheduler."""
    context = dataclasses.replace(
        api_context(running), change_stream_limit=LIMIT, change_poll_interval=0.05
    )
    port = free_port()
    config = uvicorn.Config(
        create_app(context), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started)
    yield Served(f"http://127.0.0.1:{port}", context, running)
    server.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive()


@dataclass(frozen=True)
class Message:
    event: str
    id: str
    data: dict[str, Any]


def messages(response: httpx.Response) -> Iterator[Message]:
    """The server-sent events of a stream as they arrive (comments skipped)."""
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                yield Message(fields["event"], fields["id"], json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


def read_until(stream: Iterator[Message], last: dict[str, Any]) -> list[Message]:
    """Messages up to and including the first whose data holds every item of ``last``."""
    received = []
    for message in stream:
        received.append(message)
        if last.items() <= message.data.items():
            return received
    raise AssertionError(f"the stream ended before {last}: {received}")


def append(runtime: Runtime, job_id: str | None, run_id: str | None, *payloads: Payload) -> None:
    events = [
        Event(
            payload=payload,
            occurred_at=datetime.now(UTC),
            actor="test",
            job_id=job_id,
            run_id=run_id,
            attempt=1 if run_id else None,
        )
        for payload in payloads
    ]
    positions = runtime.log.append([(e.key, runtime.codec.encode(e)) for e in events])
    assert runtime.progress.wait_for(positions, timeout=10)


def create_job(api: httpx.Client, name: str) -> str:
    created = api.post("/api/jobs", json={"name": name, "type": "shell", "command": "true"})
    assert created.status_code == 201, created.text
    job_id: str = created.json()["id"]
    return job_id


def trigger(api: httpx.Client, name: str) -> str:
    triggered = api.post(f"/api/jobs/{name}/trigger")
    assert triggered.status_code == 201, triggered.text
    run_id: str = triggered.json()["run_id"]
    return run_id


def run_to_completion(runtime: Runtime, job_id: str, run_id: str) -> None:
    """What the scheduler and a worker would append: queued, started, succeeded."""
    append(runtime, job_id, run_id, RunQueued(queue="default"))
    append(runtime, job_id, run_id, RunStarted(worker_id="w1", lease_token=1))
    append(runtime, job_id, run_id, RunSucceeded(worker_id="w1", lease_token=1, duration_ms=5))


def offsets(received: list[Message]) -> list[int]:
    return [m.data["offset"] for m in received]


def test_a_triggered_run_streams_its_statuses_in_order_with_rising_positions(
    served: Served,
) -> None:
    with served.client() as api:
        job_id = create_job(api, "nightly")
        with api.stream("GET", "/api/changes") as response:
            stream = messages(response)
            run_id = trigger(api, "nightly")
            run_to_completion(served.runtime, job_id, run_id)
            received = read_until(stream, {"run_id": run_id, "status": "completed"})
    # Only new changes: the job's creation came before the stream opened.
    assert [(m.event, m.data["event_type"], m.data["status"]) for m in received] == [
        ("run", "RunRequested", "pending"),
        ("run", "RunQueued", "queued"),
        ("run", "RunStarted", "running"),
        ("run", "RunSucceeded", "completed"),
    ]
    assert offsets(received) == sorted(set(offsets(received)))
    assert all(m.id == m.data["position"] for m in received)
    first = received[0].data
    assert (first["job_id"], first["job_name"], first["attempt"], first["actor"]) == (
        job_id,
        "nightly",
        1,
        "anonymous",  # the caller in open mode (no token made)
    )
    assert first["rejected"] is None and first["occurred_at"].endswith("Z")
    ids = [parse_position(m.id) for m in received]
    assert all(covers(b, a) and b != a for a, b in itertools.pairwise(ids))


def test_a_resumed_stream_gets_exactly_what_came_after_its_last_id(served: Served) -> None:
    with served.client() as api:
        job_id = create_job(api, "resumable")
        run_id = trigger(api, "resumable")
        append(served.runtime, job_id, run_id, RunQueued(queue="default"))
        with api.stream("GET", "/api/changes", params={"after": "0"}) as response:
            before = read_until(messages(response), {"run_id": run_id, "status": "queued"})
        append(served.runtime, job_id, run_id, RunStarted(worker_id="w1", lease_token=1))
        append(
            served.runtime,
            job_id,
            run_id,
            RunSucceeded(worker_id="w1", lease_token=1, duration_ms=5),
        )
        # A browser reconnects to the URL it first opened, sending the last id it saw.
        resumed = api.stream(
            "GET", "/api/changes", params={"after": "0"}, headers={"Last-Event-ID": before[-1].id}
        )
        with resumed as response:
            after = read_until(messages(response), {"run_id": run_id, "status": "completed"})
        with api.stream("GET", "/api/changes", params={"after": "0"}) as response:
            everything = read_until(messages(response), {"run_id": run_id, "status": "completed"})
    assert [m.data["event_type"] for m in before] == ["JobCreated", "RunRequested", "RunQueued"]
    assert [m.data["event_type"] for m in after] == ["RunStarted", "RunSucceeded"]
    assert everything == before + after  # nothing lost, nothing repeated, same ids


def test_a_malformed_position_or_kind_is_422_naming_the_field(served: Served) -> None:
    with served.client() as api:
        for params, headers, field in [
            ({"after": "nope"}, {}, "after"),
            ({"after": "0:1,0:2"}, {}, "after"),
            ({}, {"Last-Event-ID": "1:x"}, "Last-Event-ID"),
            ({"types": "run,runs"}, {}, "types"),
        ]:
            refused = api.get("/api/changes", params=params, headers=headers)
            assert refused.status_code == 422, refused.text
            body = refused.json()
            assert body["errors"][0]["field"] == field, body
            assert body["errors"][0]["reason"], body
        assert served.context.change_streams.open == 0


def test_past_the_cap_the_answer_is_429_and_a_client_that_leaves_frees_its_slot(
    served: Served,
) -> None:
    with served.client() as api, ExitStack() as streams:
        opened = [streams.enter_context(api.stream("GET", "/api/changes")) for _ in range(LIMIT)]
        assert all(response.status_code == 200 for response in opened)
        refused = api.get("/api/changes")
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_streams"
        assert "CHRONOLOG_CHANGE_STREAMS_MAX" in refused.json()["message"]
        opened[0].close()  # the client goes away; the server notices and frees the slot
        wait_until(lambda: served.context.change_streams.open == LIMIT - 1)
        with api.stream("GET", "/api/changes") as again:
            assert again.status_code == 200
    wait_until(lambda: served.context.change_streams.open == 0)


def test_job_and_type_filters(served: Served) -> None:
    with served.client() as api:
        wanted_id = create_job(api, "wanted")
        other_id = create_job(api, "other")
        by_name = api.stream("GET", "/api/changes", params={"after": "0", "job": "wanted"})
        by_id = api.stream("GET", "/api/changes", params={"job": wanted_id, "types": "job"})
        workers = api.stream("GET", "/api/changes", params={"types": "worker"})
        with by_name as named, by_id as identified, workers as working:
            api.post("/api/jobs/other/pause")
            api.post("/api/jobs/wanted/pause")
            run_id = trigger(api, "wanted")
            trigger(api, "other")
            registered = WorkerRegistered("w9", "host", 1, ("default",), 2)
            append(served.runtime, None, None, registered)
            append(served.runtime, wanted_id, run_id, RunQueued(queue="default"))
            named_got = read_until(messages(named), {"run_id": run_id, "status": "queued"})
            identified_got = read_until(messages(identified), {"status": "paused"})
            worker_got = read_until(messages(working), {"worker_id": "w9"})
    assert {m.data["job_id"] for m in named_got} == {wanted_id} != {other_id}
    assert [m.data["event_type"] for m in named_got] == [
        "JobCreated",
        "JobPaused",
        "RunRequested",
        "RunQueued",
    ]
    assert [(m.event, m.data["event_type"]) for m in identified_got] == [("job", "JobPaused")]
    assert [(m.event, m.data["status"]) for m in worker_got] == [("worker", "active")]


def test_a_rejected_event_is_sent_with_its_reason_and_the_run_status_unchanged(
    served: Served,
) -> None:
    with served.client() as api:
        job_id = create_job(api, "stale")
        run_id = trigger(api, "stale")
        run_to_completion(served.runtime, job_id, run_id)
        with api.stream("GET", "/api/changes", params={"job": "stale"}) as response:
            late = RunSucceeded(worker_id="w2", lease_token=7, duration_ms=5)
            append(served.runtime, job_id, run_id, late)
            (message,) = read_until(messages(response), {"event_type": "RunSucceeded"})
    assert message.data["rejected"] and "stale" in message.data["rejected"]
    assert message.data["status"] == "completed"


def test_a_stream_ends_when_the_server_is_asked_to_stop(served: Served) -> None:
    # Uvicorn waits for open responses before it stops: an endless one must end itself.
    with served.client() as api, api.stream("GET", "/api/changes") as response:
        served.context.stopping.set()
        assert list(messages(response)) == []
    wait_until(lambda: served.context.change_streams.open == 0)
