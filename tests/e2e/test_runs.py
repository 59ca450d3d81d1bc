"""Runs end to end against real processes: triggers, retries, timeouts, cancels,
dependencies and the exactly-once promise. Side effects are counted in files."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.cluster import (
    Cluster,
    create_job,
    get_run,
    lines,
    pid_alive,
    run_events,
    runs_of,
    settle,
    start_cluster,
    trigger,
    wait_for_run,
    wait_gone,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", workers=1, env=stack)
    yield running
    running.stop()


def test_demo_trigger_runs_on_a_worker_and_records_the_outcome(cluster: Cluster) -> None:
    with cluster.api() as api:
        # The scheduler child of `up` may take its lease after the first worker is ready.
        wait_until(lambda: api.get("/api/health").json()["scheduler"]["leader"] is not None)
        assert api.get("/api/health").json()["scheduler"]["leader"].startswith("scheduler-")
        workers = api.get("/api/workers").json()
        assert len(workers) == 1
        assert workers[0]["tags"] == ["default"]
        assert (workers[0]["concurrency"], workers[0]["active_jobs"], workers[0]["alive"]) == (
            2,
            0,
            True,
        )
        create_job(
            api,
            name="report",
            type="python",
            function="tests.jobs.sample:add",
            parameters={"a": 2, "b": 3},
        )
        triggered = api.post("/api/jobs/report/trigger", json={"parameters": {"b": 40}})
        assert triggered.status_code == 201
        assert triggered.json()["status"] == "pending"  # answered once durable
        run = wait_for_run(api, triggered.json()["run_id"], lambda r: r["status"] == "completed")
        assert run["result"] == 42
        assert run["worker"] == workers[0]["id"]
        assert run["duration"] is not None and run["started_at"] is not None
        assert [a["status"] for a in run["attempts"]] == ["succeeded"]
        types = [e["type"] for e in run_events(api, run["id"])]
        assert types == ["RunRequested", "RunQueued", "RunStarted", "RunSucceeded"]


def test_same_idempotency_key_gives_the_same_run(cluster: Cluster, tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    with cluster.api() as api:
        create_job(api, name="once", type="shell", command=f"echo x >> {effects}")
        first = trigger(api, "once", headers={"Idempotency-Key": "abc"})
        again = api.post("/api/jobs/once/trigger", headers={"Idempotency-Key": "abc"})
        assert (again.status_code, again.json()["run_id"]) == (200, first)
        wait_for_run(api, first, lambda r: r["status"] == "completed")
        assert len(runs_of(api, "once")) == 1
        assert lines(effects) == ["x"]


def test_two_triggers_at_once_under_forbid_execute_once(cluster: Cluster, tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    with cluster.api() as api:
        create_job(
            api,
            name="exclusive",
            type="shell",
            command=f"echo $CHRONOLOG_RUN_ID >> {effects}; sleep 2",
        )
    with ThreadPoolExecutor(2) as pool:  # each thread its own connection, both at once
        run_ids = list(pool.map(lambda _: _trigger_alone(cluster, "exclusive"), range(2)))
    with cluster.api() as api:
        ended = [
            wait_for_run(api, r, lambda r: r["status"] in ("completed", "skipped")) for r in run_ids
        ]
        settle(1.0)
        assert sorted(r["status"] for r in ended) == ["completed", "skipped"]
        assert [r["reason"] for r in ended if r["status"] == "skipped"] == ["overlap"]
        assert len(lines(effects)) == 1


def _trigger_alone(cluster: Cluster, job: str) -> str:
    with cluster.api() as api:
        return trigger(api, job)


def test_failing_job_is_retried_with_backoff_then_dead_lettered_and_retried_by_hand(
    cluster: Cluster, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    with cluster.api() as api:
        create_job(
            api,
            name="flaky",
            type="shell",
            command=f"echo attempt >> {effects}; exit 3",
            retries=2,
            retry_delay=0.2,
            retry_backoff="exponential",
        )
        run_id = trigger(api, "flaky")
        run = wait_for_run(api, run_id, lambda r: r["dead_lettered"])
        assert (run["status"], run["attempt"], run["exit_code"]) == ("failed", 3, 3)
        assert [a["status"] for a in run["attempts"]] == ["failed", "failed", "failed"]
        delays = [
            e["payload"]["delay_ms"]
            for e in run_events(api, run_id)
            if e["type"] == "RunRetryScheduled"
        ]
        assert len(delays) == 2
        assert 180 <= delays[0] <= 220 and 360 <= delays[1] <= 440  # 0.2 s, 0.4 s, +-10% jitter
        assert [r["id"] for r in api.get("/api/dead-letter").json()["runs"]] == [run_id]
        assert len(lines(effects)) == 3

        retried = api.post(f"/api/runs/{run_id}/retry")
        assert retried.status_code == 200, retried.text
        run = wait_for_run(
            api,
            run_id,
            lambda r: r["attempt"] == 4 and r["status"] == "failed" and r["dead_lettered"],
        )
        assert len(lines(effects)) == 4
        assert api.post(f"/api/runs/{run_id}/retry").status_code == 200
        assert api.post("/api/runs/run-unknown/retry").status_code == 404


def test_a_job_past_its_timeout_is_killed_with_its_children(
    cluster: Cluster, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    with cluster.api() as api:
        create_job(
            api,
            name="slow",
            type="shell",
            command=f"sleep 300 & echo $! > {pidfile}; wait",
            timeout=1,
            retries=0,
        )
        run_id = trigger(api, "slow")
        run = wait_for_run(api, run_id, lambda r: r["dead_lettered"])
        assert run["status"] == "failed"
        assert run["attempts"][0]["status"] == "timed_out"
        assert run["error"] == "timed out after 1 s"
        wait_gone(int(pidfile.read_text()))


def test_cancelling_a_running_shell_job_kills_its_process_tree(
    cluster: Cluster, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    with cluster.api() as api:
        create_job(api, name="long", type="shell", command=f"sleep 300 & echo $! > {pidfile}; wait")
        run_id = trigger(api, "long")
        wait_for_run(api, run_id, lambda r: r["status"] == "running")
        child = int(_wait_file(pidfile))
        assert pid_alive(child)
        cancelled = api.post(f"/api/runs/{run_id}/cancel", json={"reason": "no longer needed"})
        assert cancelled.status_code == 200, cancelled.text
        run = wait_for_run(api, run_id, lambda r: r["status"] == "cancelled")
        assert run["attempts"][0]["status"] == "cancelled"
        wait_gone(child)
        assert api.post(f"/api/runs/{run_id}/cancel").status_code == 409


def test_cancelling_a_queued_run_drops_it(cluster: Cluster, tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    with cluster.api() as api:
        create_job(
            api,
            name="later",
            type="shell",
            command=f"echo ran >> {effects}",
            queue="nobody-listens",
        )
        run_id = trigger(api, "later")
        wait_for_run(api, run_id, lambda r: r["status"] == "queued")
        assert api.post(f"/api/runs/{run_id}/cancel").json()["status"] == "cancelled"
        assert lines(effects) == []


def test_dependents_run_after_success_and_are_skipped_after_final_failure(
    cluster: Cluster, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    with cluster.api() as api:
        create_job(api, name="daily-report", type="shell", command="echo report", retries=0)
        create_job(
            api,
            name="send-report",
            type="shell",
            command=f"echo $CHRONOLOG_RUN_ID >> {effects}",
            depends_on=["daily-report"],
        )
        upstream = trigger(api, "daily-report")
        wait_for_run(api, upstream, lambda r: r["status"] == "completed")

        def downstream() -> list[dict[str, object]]:
            return runs_of(api, "send-report")

        wait_until(lambda: any(r["status"] == "completed" for r in downstream()), timeout=20)
        settle(1.0)
        runs = downstream()
        assert len(runs) == 1
        assert (runs[0]["trigger"], runs[0]["upstream_run_id"]) == ("dependency", upstream)
        assert runs[0]["correlation_id"] == get_run(api, upstream)["correlation_id"]
        assert len(lines(effects)) == 1

        api.put("/api/jobs/daily-report", json={"command": "exit 1"})
        failed = trigger(api, "daily-report")
        wait_for_run(api, failed, lambda r: r["dead_lettered"])
        wait_until(lambda: any(r["status"] == "skipped" for r in downstream()), timeout=20)
        skipped = [r for r in downstream() if r["status"] == "skipped"]
        assert [r["reason"] for r in skipped] == ["upstream_failed"]
        assert len(lines(effects)) == 1


def _wait_file(path: Path, timeout: float = 10) -> str:
    wait_until(lambda: path.exists() and path.read_text().strip() != "", timeout=timeout)
    return path.read_text().strip()


def test_sigterm_drains_a_worker(cluster: Cluster, tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    with cluster.api() as api:
        create_job(api, name="finish-me", type="shell", command=f"sleep 1; echo done >> {effects}")
        run_id = trigger(api, "finish-me")
        wait_for_run(api, run_id, lambda r: r["status"] == "running")
        worker = cluster.workers[0]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
        assert get_run(api, run_id)["status"] == "completed"
        assert lines(effects) == ["done"]
        assert api.get("/api/workers").json() == []


def read_events(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a server-sent-event stream, as they arrive."""
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif line == "" and data:
            yield event, "\n".join(data)
            event, data = "message", []


def test_live_output_streams_while_the_job_runs_then_the_kept_output(cluster: Cluster) -> None:
    with cluster.api() as api:
        command = "echo first; sleep 1.5; echo oops >&2; echo second; sleep 1"
        create_job(api, name="talkative", type="shell", command=command)
        run_id = trigger(api, "talkative")
        wait_for_run(api, run_id, lambda r: r["status"] == "running")
        received: list[tuple[str, str, str]] = []  # event, data, run status at arrival
        url = f"{cluster.url}/api/runs/{run_id}/output/live"
        with httpx.stream("GET", url, timeout=30, headers=cluster.server.headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for event, data in read_events(response):
                received.append((event, data, get_run(api, run_id)["status"]))
                if event == "end":
                    break
        stdout = "\n".join(data for event, data, _ in received if event == "stdout")
        assert stdout.endswith("second")  # "first" may be out before we subscribed
        assert ("stderr", "oops") in [(e, d) for e, d, _ in received]
        assert received[0][2] == "running", "live output arrived only after the run ended"
        assert received[-1][0] == "end"

        wait_for_run(api, run_id, lambda r: r["status"] == "completed")
        with httpx.stream("GET", url, timeout=30, headers=cluster.server.headers) as response:
            kept = list(read_events(response))
        # each line is one data line: no empty one after the last newline
        assert kept == [("stdout", "first\nsecond"), ("stderr", "oops"), ("end", "completed")]
        assert api.get("/api/runs/run-nope/output/live").status_code == 404
