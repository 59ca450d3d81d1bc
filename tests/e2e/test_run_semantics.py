"""What a run means, seen by clients of the API: the parameters every run carries, and
statuses that never go back from terminal to open (issue 8, items 1, 2 and 6)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.e2e.cluster import (
    Cluster,
    create_job,
    lines,
    run_events,
    runs_of,
    start_cluster,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", workers=1, env=stack)
    yield running
    running.stop()


def requested_parameters(api: Any, run_id: str) -> Any:
    [requested] = [e for e in run_events(api, run_id) if e["type"] == "RunRequested"]
    return requested["payload"]["parameters"]


def test_scheduled_and_dependency_runs_carry_their_jobs_parameters(
    cluster: Cluster, tmp_path: Path
) -> None:
    upstream_seen, downstream_seen = tmp_path / "upstream", tmp_path / "downstream"
    with cluster.api() as api:
        create_job(
            api,
            name="ticker",
            type="shell",
            command=f'echo "$CHRONOLOG_PARAMS" >> {upstream_seen}',
            schedule="every 1s",
            parameters={"k": "v"},
        )
        create_job(
            api,
            name="follower",
            type="shell",
            command=f'echo "$CHRONOLOG_PARAMS" >> {downstream_seen}',
            depends_on=["ticker"],
            parameters={"d": [1, 2]},
        )
        wait_until(lambda: lines(downstream_seen) != [], timeout=20)
        api.post("/api/jobs/ticker/pause", json={"reason": "enough"})

        assert json.loads(lines(upstream_seen)[0]) == {"k": "v"}
        assert json.loads(lines(downstream_seen)[0]) == {"d": [1, 2]}
        ticks = [r for r in runs_of(api, "ticker") if r["status"] == "completed"]
        follows = [r for r in runs_of(api, "follower") if r["status"] == "completed"]
        assert ticks and follows
        assert {r["trigger"] for r in ticks} == {"schedule"}
        assert {r["trigger"] for r in follows} == {"dependency"}
        # Recorded on the run and in its RunRequested event, so a replay shows what ran.
        assert [r["parameters"] for r in ticks] == [{"k": "v"}] * len(ticks)
        assert [r["parameters"] for r in follows] == [{"d": [1, 2]}] * len(follows)
        assert requested_parameters(api, ticks[0]["id"]) == {"k": "v"}
        assert requested_parameters(api, follows[0]["id"]) == {"d": [1, 2]}
