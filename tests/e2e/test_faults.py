"""Crashes, freezes and restarts: no run is lost, none completes twice, and a fenced-off
worker's late outcome is recorded as stale."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import datetime
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
    settle,
    start_cluster,
    trigger,
    wait_for_run,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", workers=2, env=stack)
    yield running
    running.stop()


def worker_pid(cluster: Cluster, worker_id: str) -> int:
    with cluster.api() as api:
        pids = {w["id"]: w["pid"] for w in api.get("/api/workers").json()}
    return int(pids[worker_id])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_worker_killed_mid_run_loses_no_run_and_completes_it_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    with cluster.api() as api:
        create_job(
            api,
            name="kill-me",
            type="shell",
            command=f"echo start >> {effects}; sleep 2; echo done >> {effects}",
            retries=1,
            retry_delay=0,
        )
        run_id = trigger(api, "kill-me")
        first = wait_for_run(api, run_id, lambda r: r["status"] == "running")
        wait_until(lambda: lines(effects) == ["start"])
        os.kill(worker_pid(cluster, first["worker"]), signal.SIGKILL)

        run = wait_for_run(api, run_id, lambda r: r["status"] == "completed", timeout=30)
        assert [a["status"] for a in run["attempts"]] == ["lost", "succeeded"]
        assert run["attempts"][1]["worker"] != first["worker"]
        lost = next(e for e in run_events(api, run_id) if e["type"] == "RunLost")
        # Detected within the lease TTL (2 s) plus the loss grace and a scheduler round.
        assert (at(lost["occurred_at"]) - at(first["started_at"])).total_seconds() < 2 + 1 + 1 + 1
        settle(2.5)  # the killed attempt's job would have finished by now had it survived
        assert lines(effects) == ["start", "start", "done"]
        assert len([r for r in runs_of(api, "kill-me") if r["status"] == "completed"]) == 1


def test_a_frozen_workers_late_outcome_is_rejected_as_stale(
    cluster: Cluster, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    with cluster.api() as api:
        create_job(
            api,
            name="freeze-me",
            type="shell",
            # Ends while its worker is frozen (at least the lease TTL): the worker finds
            # the outcome when it wakes and reports it with its old lease token.
            command=f"sleep 1; echo done-$CHRONOLOG_ATTEMPT >> {effects}",
            retries=1,
            retry_delay=0,
        )
        run_id = trigger(api, "freeze-me")
        first = wait_for_run(api, run_id, lambda r: r["status"] == "running")
        frozen = worker_pid(cluster, first["worker"])
        os.kill(frozen, signal.SIGSTOP)
        try:
            wait_for_run(
                api, run_id, lambda r: r["attempt"] == 2 and r["status"] == "running", timeout=20
            )
        finally:
            os.kill(frozen, signal.SIGCONT)
        run = wait_for_run(api, run_id, lambda r: r["status"] == "completed", timeout=20)
        assert run["attempt"] == 2

        def stale() -> list[dict[str, Any]]:
            return [
                e
                for e in run_events(api, run_id)
                if (e["rejected"] or "").startswith("stale") and e["actor"] == first["worker"]
            ]

        wait_until(lambda: len(stale()) >= 1, timeout=20)
        late = stale()[0]
        assert (late["type"], late["attempt"]) == ("RunSucceeded", 1)
        assert get_run(api, run_id)["status"] == "completed"  # the truth stands


def test_restarting_everything_mid_stream_loses_and_duplicates_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    with cluster.api() as api:
        create_job(
            api,
            name="steady",
            type="shell",
            command=f"sleep 0.3; echo $CHRONOLOG_RUN_ID >> {effects}",
            concurrency_policy="allow",
            max_concurrency=10,
            retries=2,
            retry_delay=0,
        )
        keys = [f"k{i}" for i in range(12)]
        run_ids = [trigger(api, "steady", headers={"Idempotency-Key": key}) for key in keys[:6]]
        history_before = len(api.get("/api/jobs/steady/events").json()["events"])

    cluster.stop()
    cluster.server.start()
    cluster.workers.clear()
    cluster.start_worker()
    cluster.start_worker()

    with cluster.api() as api:
        # The same keys give the same runs after the restart; new keys give new ones.
        run_ids_again = [trigger(api, "steady", headers={"Idempotency-Key": key}) for key in keys]
        assert run_ids_again[:6] == run_ids
        for run_id in run_ids_again:
            wait_for_run(api, run_id, lambda r: r["status"] == "completed", timeout=30)
        runs = runs_of(api, "steady")
        assert sorted(r["id"] for r in runs) == sorted(set(run_ids_again))
        assert len(api.get("/api/jobs/steady/events").json()["events"]) > history_before
        settle(1.0)
        # Each run's effect happened at least once; a run whose worker stopped after the
        # effect but before reporting it ran again (its attempts say so).
        for run in (get_run(api, run_id) for run_id in run_ids_again):
            count = lines(effects).count(run["id"])
            assert 1 <= count <= run["attempt"], run


def test_a_worker_that_cannot_drain_in_time_hands_its_run_back(
    tmp_path: Path, stack: dict[str, str]
) -> None:
    effects = tmp_path / "effects"
    cluster = start_cluster(tmp_path / "data", workers=0, env=stack)
    try:
        impatient = cluster.start_worker(env={"CHRONOLOG_DRAIN_TIMEOUT": "1"})
        with cluster.api() as api:
            first_attempt_hangs = '[ "$CHRONOLOG_ATTEMPT" = 1 ] && sleep 30'
            command = f"{first_attempt_hangs}; echo done-$CHRONOLOG_ATTEMPT >> {effects}"
            create_job(api, name="long", type="shell", command=command, retries=1, retry_delay=0)
            run_id = trigger(api, "long")
            wait_for_run(api, run_id, lambda r: r["status"] == "running")
            cluster.start_worker()
            impatient.send_signal(signal.SIGTERM)
            assert impatient.wait(timeout=15) == 0
            run = wait_for_run(api, run_id, lambda r: r["status"] == "completed", timeout=30)
            assert [a["status"] for a in run["attempts"]] == ["lost", "succeeded"]
            assert not run["cancel_requested"]
            assert lines(effects) == ["done-2"]
    finally:
        cluster.stop()
