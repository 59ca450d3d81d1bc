"""``/metrics`` of a real stack, parsed with Prometheus's own text parser and checked
against a known set of runs.

One stack for the module: ``chronolog up`` with one worker child (its scheduler and
worker write to up's multiprocess directory, its API adds them up), and one standalone
worker on the ``side`` queue serving its own metrics on ``CHRONOLOG_METRICS_PORT``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until
from tests.e2e.cluster import Cluster, cluster_env, create_job, trigger, wait_for_run
from tests.e2e.conftest import Server, free_port

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
FINAL = {"completed", "failed"}  # a failed run with no retries left is dead-lettered


@dataclass
class Stack:
    cluster: Cluster
    worker_metrics: str  # the standalone worker's /metrics URL
    runs: dict[str, list[str]]  # job name -> its run ids


def scrape(url: str) -> Samples:
    text = httpx.get(url, timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("metrics") / "data"
    args = ["--workers", "1", "--concurrency", "2"]
    server = Server(data_dir, free_port(), extra_args=args, env=cluster_env())
    server.start()
    cluster = Cluster(data_dir, server.port, server)
    port = free_port()
    try:
        cluster.start_worker(concurrency=1, tags="side", env={"CHRONOLOG_METRICS_PORT": str(port)})
        yield Stack(cluster, f"http://127.0.0.1:{port}/metrics", run_known_set(cluster))
    finally:
        cluster.stop()


def run_known_set(cluster: Cluster) -> dict[str, list[str]]:
    """3 succeeding and 1 failing manual runs, 1 scheduled run, 2 runs parked on a queue
    no worker takes from, and 1 run on the standalone worker's queue."""
    allow = {"type": "shell", "concurrency_policy": "allow", "max_concurrency": None}
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="milliseconds")
    with cluster.api() as api:
        create_job(api, name="tidy", command="true", **allow)
        create_job(api, name="broken", command="exit 3", retries=0, **allow)
        create_job(api, name="parked", command="true", queue="parked", **allow)
        create_job(api, name="aside", command="true", queue="side", **allow)
        timed = create_job(api, name="timed", type="shell", command="true", schedule=soon)
        runs = {
            "tidy": [trigger(api, "tidy") for _ in range(3)],
            "broken": [trigger(api, "broken")],
            "parked": [trigger(api, "parked") for _ in range(2)],
            "aside": [trigger(api, "aside")],
        }
        for job in ("tidy", "broken", "aside"):
            for run_id in runs[job]:
                wait_for_run(api, run_id, lambda run: run["status"] in FINAL)

        def scheduled_run_finished() -> bool:
            found = api.get("/api/runs", params={"job_id": timed["id"]}).json()["runs"]
            runs["timed"] = [run["id"] for run in found]
            return len(found) == 1 and found[0]["status"] == "completed"

        wait_until(scheduled_run_finished, timeout=30, interval=0.1)
    return runs


def up_metrics(stack: Stack) -> Samples:
    return scrape(f"{stack.cluster.url}/metrics")


def test_run_counters_count_each_reported_outcome_by_job_queue_and_status(stack: Stack) -> None:
    def counted() -> bool:
        samples = up_metrics(stack)
        runs = {
            (job, status): value(
                samples, "chronolog_runs_total", job=job, queue="default", status=status
            )
            for job, status in (("tidy", "succeeded"), ("broken", "failed"), ("timed", "succeeded"))
        }
        return runs == {
            ("tidy", "succeeded"): 3,
            ("broken", "failed"): 1,
            ("timed", "succeeded"): 1,
        }

    wait_until(counted, timeout=10, interval=0.1)
    samples = up_metrics(stack)
    assert value(samples, "chronolog_run_duration_seconds_count", job="tidy", queue="default") == 3
    assert (
        value(samples, "chronolog_run_duration_seconds_count", job="broken", queue="default") == 1
    )
    # Only the scheduled run has a fire time to be late for.
    assert value(samples, "chronolog_run_lateness_seconds_count", queue="default") == 1
    assert not any(dict(labels).get("job") == "aside" for _, labels in samples)


def test_queue_depth_counts_the_runs_waiting_on_a_queue_no_worker_takes_from(stack: Stack) -> None:
    samples = up_metrics(stack)
    assert value(samples, "chronolog_queue_depth", queue="parked") == 2
    assert value(samples, "chronolog_queue_depth", queue="default") == 0
    assert value(samples, "chronolog_queue_depth", queue="side") == 0


def test_workers_slots_decisions_and_the_pipeline_are_reported(stack: Stack) -> None:
    samples = up_metrics(stack)
    assert value(samples, "chronolog_workers_alive") == 2
    assert value(samples, "chronolog_worker_slots") == 2  # up's worker child; not the standalone
    assert value(samples, "chronolog_worker_busy_slots") == 0
    assert value(samples, "chronolog_scheduler_decisions_total", event="RunDeadLettered") == 1
    assert value(samples, "chronolog_api_triggers_total", result="created") == 7
    applied = value(samples, "chronolog_projector_events_applied_total")
    appended = value(samples, "chronolog_events_appended_total")
    assert applied is not None and appended is not None and applied >= appended > 0
    assert (value(samples, "chronolog_event_log_append_seconds_count") or 0) > 0
    assert value(samples, "chronolog_projector_lag_events") is not None


def test_a_standalone_worker_serves_its_own_runs_on_its_metrics_port(stack: Stack) -> None:
    def counted() -> bool:
        samples = scrape(stack.worker_metrics)
        labels = {"job": "aside", "queue": "side", "status": "succeeded"}
        return value(samples, "chronolog_runs_total", **labels) == 1

    wait_until(counted, timeout=10, interval=0.1)
    samples = scrape(stack.worker_metrics)
    assert value(samples, "chronolog_worker_slots") == 1
    assert value(samples, "chronolog_run_duration_seconds_count", job="aside", queue="side") == 1
    assert not any(dict(labels).get("job") == "tidy" for _, labels in samples)
