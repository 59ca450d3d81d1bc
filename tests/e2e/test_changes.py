"""The change stream of a real ``chronolog up`` with a worker: a run goes by live, and
``up`` still stops promptly while a client keeps a stream open."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.e2e.cluster import Cluster, create_job, start_cluster, trigger

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", workers=1, env=stack)
    yield running
    running.stop()


def changes(response: httpx.Response) -> Iterator[tuple[str, dict[str, object]]]:
    """(event, data) of each server-sent event with data, as it arrives."""
    event = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield event, json.loads(line.removeprefix("data: "))


def test_a_run_streams_live_and_up_stops_with_a_stream_open(cluster: Cluster) -> None:
    with cluster.api() as api:
        create_job(api, name="streamed", type="shell", command="echo hi")
        with api.stream("GET", "/api/changes", params={"job": "streamed"}) as response:
            run_id = trigger(api, "streamed")
            statuses = []
            for event, data in changes(response):
                assert (event, data["run_id"]) == ("run", run_id)
                statuses.append(data["status"])
                if data["status"] == "completed":
                    break
        assert statuses == ["pending", "queued", "running", "completed"]
        with api.stream("GET", "/api/changes", params={"after": "0"}) as response:
            replay = changes(response)  # kept: a dropped iterator would close the response
            assert next(replay)[1]["event_type"] in ("JobCreated", "WorkerRegistered")
            assert cluster.server.stop() == 0  # within its 30 s wait, the stream still open
            assert "RunSucceeded" in [data["event_type"] for _, data in replay]  # then it ended
