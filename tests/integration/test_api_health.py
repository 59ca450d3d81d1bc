"""``/api/health`` against a real embedded runtime: 503 naming what is down, 200 when not;
``/api/health/live`` answers whenever the API does."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from chronolog.serving import api_context
from chronolog.wiring import Runtime, start_projector
from leases.dispatch import SCHEDULER_LEADER_KEY
from tests.conftest import wait_until
from tests.history import append_history
from tests.samples import DAILY_REPORT


def test_without_a_scheduler_health_is_503_naming_it_and_liveness_is_200(
    client: TestClient,
) -> None:
    assert client.post("/api/jobs", json=DAILY_REPORT).status_code == 201
    response = client.get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["problems"] == ["no scheduler leads: the leader lease is free"]
    assert body["event_log"]["events"] == 1
    assert body["projector"] == {"lag": 0, "rejected": 0}
    assert body["scheduler"] == {"leader": None}
    assert body["workers"] == {"registered": 0, "alive": 0}
    assert body["live_output"]["streams"] == 0
    live = client.get("/api/health/live")
    assert (live.status_code, live.json()["status"]) == (200, "ok")


def test_with_a_leader_and_nothing_waiting_health_is_ok(
    client: TestClient, running: Runtime
) -> None:
    assert running.leases.acquire(SCHEDULER_LEADER_KEY, "scheduler-test", 30) is not None
    response = client.get("/api/health")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    assert response.json()["scheduler"]["leader"] == "scheduler-test"
    assert response.json()["problems"] == []


@pytest.fixture
def unprojected(runtime: Runtime) -> Iterator[Runtime]:
    """The runtime with a leader and events in the log that no projector has applied."""
    assert runtime.leases.acquire(SCHEDULER_LEADER_KEY, "scheduler-test", 60) is not None
    append_history(runtime.log, runtime.codec, jobs=3)
    yield runtime


def test_a_projector_lagging_past_the_limit_is_503(unprojected: Runtime) -> None:
    context = dataclasses.replace(api_context(unprojected), health_max_lag=0)
    with TestClient(create_app(context)) as client:
        response = client.get("/api/health")
    assert response.status_code == 503
    (problem,) = response.json()["problems"]
    assert "behind the log (more than CHRONOLOG_HEALTH_MAX_LAG=0)" in problem


def test_a_projector_that_stops_advancing_is_503_until_it_catches_up(
    unprojected: Runtime,
) -> None:
    context = dataclasses.replace(api_context(unprojected), health_stall_after=0.2)

    def problems() -> list[str]:
        found: list[str] = client.get("/api/health").json()["problems"]
        return found

    with TestClient(create_app(context)) as client:
        wait_until(lambda: any("has applied nothing" in p for p in problems()), timeout=10)
        assert client.get("/api/health").status_code == 503
        stop = threading.Event()
        thread = start_projector(unprojected, stop)
        try:
            # (the history's queued runs have no worker: that problem stays)
            wait_until(lambda: not any("projector" in p for p in problems()), timeout=20)
        finally:
            stop.set()
            thread.join(timeout=10)
