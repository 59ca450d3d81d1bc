"""Schedules fire on time, once per fire time, also with two schedulers and a leader
that dies."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.e2e.cluster import Cluster, create_job, runs_of, settle, start_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", workers=1, scheduler=False, env=stack)
    yield running
    running.stop()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def scheduled(runs: list[dict[str, Any]]) -> list[datetime]:
    return sorted(at(r["scheduled_for"]) for r in runs if r["trigger"] == "schedule")


def leader(cluster: Cluster) -> str | None:
    """The node holding the leader lease (as health reports it); None between a lapse and
    a take-over."""
    with cluster.api() as api:
        owner: str | None = api.get("/api/health").json()["scheduler"]["leader"]
        return owner


def test_interval_cron_and_one_time_jobs_fire_once_per_time_with_two_schedulers(
    cluster: Cluster,
) -> None:
    nodes = dict(cluster.start_scheduler() for _ in range(2))
    wait_until(lambda: leader(cluster) is not None, timeout=10)
    once_at = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    with cluster.api() as api:
        create_job(api, name="every-2s", type="shell", command="true", schedule="every 2s")
        create_job(api, name="each-minute", type="shell", command="true", schedule="* * * * *")
        create_job(api, name="once", type="shell", command="true", schedule=once_at.isoformat())

        wait_until(lambda: len(scheduled(runs_of(api, "every-2s"))) >= 3, timeout=15)
        killed = leader(cluster)
        assert killed is not None
        nodes[killed].send_signal(signal.SIGKILL)
        nodes[killed].wait()
        # The standby leads within the leader lease TTL (2 s) and the fires go on.
        wait_until(lambda: leader(cluster) not in (None, killed), timeout=10)
        count = len(scheduled(runs_of(api, "every-2s")))
        wait_until(lambda: len(scheduled(runs_of(api, "every-2s"))) >= count + 3, timeout=15)

        fires = scheduled(runs_of(api, "every-2s"))
        assert fires == sorted(set(fires)), "a fire time got two runs"
        gaps = {(b - a).total_seconds() for a, b in pairwise(fires)}
        assert gaps == {2.0}, f"fire times missing or off the 2 s grid: {fires}"
        assert all(f.timestamp() % 2 == 0 for f in fires)
        runs = runs_of(api, "every-2s")
        late = [
            at(r["started_at"]) - at(r["scheduled_for"])
            for r in runs
            if r["started_at"] and r["status"] != "skipped"
        ]
        assert late and max(late) < timedelta(seconds=3)  # the take-over round is the slowest

        once = runs_of(api, "once")
        assert [(r["trigger"], at(r["scheduled_for"])) for r in once] == [("schedule", once_at)]

        wait_until(lambda: scheduled(runs_of(api, "each-minute")) != [], timeout=70)
        [minute_run] = runs_of(api, "each-minute")
        fired = at(minute_run["scheduled_for"])
        assert (fired.second, fired.microsecond) == (0, 0)
        wait_until(lambda: get_status(api, minute_run["id"]) == "completed", timeout=10)
        assert at(get_run_started(api, minute_run["id"])) - fired < timedelta(seconds=2)
        settle(1.0)
        assert len(runs_of(api, "once")) == 1


def get_status(api: Any, run_id: str) -> str:
    status: str = api.get(f"/api/runs/{run_id}").json()["status"]
    return status


def get_run_started(api: Any, run_id: str) -> str:
    started: str = api.get(f"/api/runs/{run_id}").json()["started_at"]
    return started
