"""A ``failing`` run through the API (real log and projector, no scheduler, so the run
stays failing): it is open, listed by ``status=failing``, cancellable, and not retried
by hand; a dead-lettered one is, with its own reason (issue 8, items 2 and 6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from chronolog.wiring import Runtime
from events.model import (
    Event,
    Payload,
    RunDeadLettered,
    RunFailed,
    RunQueued,
    RunRequested,
    RunStarted,
)

RUN = "run-failing-1"


def append(runtime: Runtime, job_id: str, *payloads: Payload) -> None:
    events = [
        Event(
            payload=payload,
            occurred_at=datetime.now(UTC),
            actor="test",
            job_id=job_id,
            run_id=RUN,
            attempt=1,
        )
        for payload in payloads
    ]
    positions = runtime.log.append([(e.key, runtime.codec.encode(e)) for e in events])
    assert runtime.progress.wait_for(positions, timeout=10)


def failing_run(client: TestClient, runtime: Runtime) -> dict[str, Any]:
    job = client.post("/api/jobs", json={"name": "flaky", "type": "shell", "command": "exit 3"})
    assert job.status_code == 201, job.text
    failed = RunFailed(worker_id="w1", lease_token=1, duration_ms=5, error="exit code 3")
    append(
        runtime,
        job.json()["id"],
        RunRequested(trigger="manual"),
        RunQueued(queue="default"),
        RunStarted(worker_id="w1", lease_token=1),
        failed,
    )
    run: dict[str, Any] = client.get(f"/api/runs/{RUN}").json()
    return run


def test_a_failing_run_is_open_listed_and_not_retried_by_hand(
    client: TestClient, running: Runtime
) -> None:
    run = failing_run(client, running)
    assert (run["status"], run["dead_lettered"], run["error"]) == ("failing", False, "exit code 3")
    assert [a["status"] for a in run["attempts"]] == ["failed"]
    listed = client.get("/api/runs", params={"status": "failing"}).json()
    assert [r["id"] for r in listed["runs"]] == [RUN]
    assert client.get("/api/runs", params={"status": "failed"}).json()["runs"] == []
    assert client.get("/api/dead-letter").json()["runs"] == []
    retried = client.post(f"/api/runs/{RUN}/retry")
    assert retried.status_code == 409, retried.text
    assert "failing" in retried.json()["message"]


def test_a_failing_run_can_be_cancelled(client: TestClient, running: Runtime) -> None:
    failing_run(client, running)
    cancelled = client.post(f"/api/runs/{RUN}/cancel", json={"reason": "not needed"})
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["reason"]) == ("cancelled", "not needed")
    assert client.post(f"/api/runs/{RUN}/cancel").status_code == 409


def test_a_retry_by_hand_answers_retrying_with_its_own_reason(
    client: TestClient, running: Runtime
) -> None:
    run = failing_run(client, running)
    append(running, run["job_id"], RunDeadLettered(reason="no retries left", attempts=1))
    dead = client.get(f"/api/runs/{RUN}").json()
    assert (dead["status"], dead["dead_lettered"], dead["reason"]) == (
        "failed",
        True,
        "no retries left",
    )
    assert [r["id"] for r in client.get("/api/dead-letter").json()["runs"]] == [RUN]
    retried = client.post(f"/api/runs/{RUN}/retry")
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert (body["status"], body["attempt"], body["reason"], body["dead_lettered"]) == (
        "retrying",
        2,
        "retried by hand",
        False,
    )
