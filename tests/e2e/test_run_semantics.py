"""What a run means, seen by clients of the API: the parameters every run carries, and
statuses that never go back from terminal to open (issue 8, items 1, 2 and 6)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.e2e.cluster import (
    Cluster,
    create_job,
    get_run,
    lines,
    run_events,
    runs_of,
    start_cluster,
    trigger,
    wait_for_run,
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


# --- statuses a polling client sees --------------------------------------------------------

TERMINAL = {"completed", "failed", "cancelled", "skipped"}


def poll(
    api: Any, run_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 40
) -> list[dict[str, Any]]:
    """Every answer of GET /api/runs/{id}, one each ~50 ms, until ``until`` holds."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not seen or not until(seen[-1]):
        assert time.monotonic() < deadline, f"never reached; statuses: {statuses(seen)}"
        seen.append(get_run(api, run_id))
        time.sleep(0.05)
    return seen


def statuses(seen: list[dict[str, Any]]) -> list[str]:
    """The observed statuses, repeats collapsed."""
    out: list[str] = []
    for run in seen:
        if not out or out[-1] != run["status"]:
            out.append(run["status"])
    return out


def test_a_run_with_retries_shows_failed_only_once_it_has_failed_for_good(
    cluster: Cluster,
) -> None:
    with cluster.api() as api:
        create_job(api, name="flaky", type="shell", command="exit 3", retries=2, retry_delay=0.2)
        run_id = trigger(api, "flaky")
        seen = poll(api, run_id, lambda r: r["dead_lettered"])
        observed = statuses(seen)
        assert observed[-1] == "failed", observed
        assert not TERMINAL & set(observed[:-1]), f"terminal before the end: {observed}"
        last = seen[-1]
        assert (last["dead_lettered"], last["attempt"], last["exit_code"]) == (True, 3, 3)
        assert "no retries left" in last["reason"]
        assert [a["status"] for a in last["attempts"]] == ["failed"] * 3

        # An operator's retry reopens it, says so, and it fails for good once more.
        retried = api.post(f"/api/runs/{run_id}/retry")
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] in ("retrying", "queued", "running", "failing")
        assert retried.json()["reason"] == "retried by hand"
        again = poll(api, run_id, lambda r: r["attempt"] == 4 and r["dead_lettered"])
        assert statuses(again)[-1] == "failed" and not TERMINAL & set(statuses(again)[:-1])
        assert again[-1]["attempt"] == 4 and again[-1]["dead_lettered"]
        types = [e["type"] for e in run_events(api, run_id)]
        assert types.count("RunRetryRequested") == 1 and types.count("RunDeadLettered") == 2


def test_a_run_whose_worker_is_killed_never_shows_failed_before_it_completes(
    cluster: Cluster, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    cluster.start_worker()
    with cluster.api() as api:
        create_job(
            api,
            name="kill-me",
            type="shell",
            command=f"echo x >> {started}; sleep 2",
            retries=1,
            retry_delay=0,
        )
        run_id = trigger(api, "kill-me")
        first = wait_for_run(api, run_id, lambda r: r["status"] == "running")
        wait_until(lambda: lines(started) != [])
        pids = {w["id"]: w["pid"] for w in api.get("/api/workers").json()}
        os.kill(pids[first["worker"]], signal.SIGKILL)
        seen = poll(api, run_id, lambda r: r["status"] == "completed")
        observed = statuses(seen)
        assert "failed" not in observed, observed
        assert [a["status"] for a in seen[-1]["attempts"]] == ["lost", "succeeded"]


def test_a_fired_one_time_job_says_done(cluster: Cluster) -> None:
    at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    with cluster.api() as api:
        job = create_job(api, name="once", type="shell", command="true", schedule=at.isoformat())
        assert (job["status"], job["next_run"]) == ("active", at.isoformat().replace("+00:00", "Z"))
        wait_until(lambda: runs_of(api, "once") != [], timeout=15)
        done = api.get("/api/jobs/once").json()
        assert (done["status"], done["next_run"]) == ("done", None)
        assert [j["status"] for j in api.get("/api/jobs").json()["jobs"]] == ["done"]
        paused = api.post("/api/jobs/once/pause", json={"reason": "maintenance"}).json()
        assert (paused["status"], paused["paused_reason"]) == ("paused", "maintenance")
        resumed = api.post("/api/jobs/once/resume").json()
        assert (resumed["status"], resumed["paused_reason"]) == ("done", None)
