"""Thousands of async python runs held at once by two workers (issue 11)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chronolog.settings import load_settings
from chronolog.wiring import open_event_log
from events.codec import EventCodec
from events.ids import new_run_id
from events.model import Event, RunRequested, to_millis
from tests.conftest import wait_until
from tests.e2e.cluster import Cluster, cluster_env, create_job, peak, start_cluster

RUNS = 2000
STEPS = {"RunStarted": 1, "RunSucceeded": -1}


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", workers=0, env=stack)
    yield running
    running.stop()


def run_events(
    cluster: Cluster,
) -> tuple[
    Counter[tuple[str, str]], list[tuple[datetime, int]], dict[tuple[str, str], tuple[int, int]]
]:
    """(event type, run id) of every run event in the cluster's log, counted; and the
    (time in ms, +1 or -1) of every start and success."""
    settings = load_settings(cluster_env(cluster.env), data_dir=cluster.data_dir)
    log = open_event_log(settings)
    codec = EventCodec.default()
    seen: Counter[tuple[str, str]] = Counter()
    order: dict[tuple[str, str], tuple[int, int]] = {}  # (type, run id) -> where, last seen
    steps: list[tuple[datetime, int]] = []
    try:
        for partition, marks in log.all_watermarks().items():
            offset = marks.low
            while offset < marks.high:
                records = log.read(partition, offset, 1000)
                for record in records:
                    event = codec.decode(record.value)
                    if event.run_id is not None:
                        seen[event.type, event.run_id] += 1
                        order[event.type, event.run_id] = (partition, record.offset)
                    if event.type in STEPS:
                        steps.append((event.occurred_at, STEPS[event.type]))
                offset = records[-1].offset + 1
    finally:
        log.close()
    return seen, steps, order


def request_runs(cluster: Cluster, job_id: str, count: int) -> set[str]:
    """Append ``count`` ``RunRequested`` of ``job_id`` to the cluster's log in one call."""
    log = open_event_log(load_settings(cluster_env(cluster.env), data_dir=cluster.data_dir))
    codec = EventCodec.default()
    now = to_millis(datetime.now(UTC))
    events = [
        Event(RunRequested(trigger="backfill"), now, "test", job_id=job_id, run_id=run_id,
              attempt=1, correlation_id=run_id)
        for run_id in (new_run_id() for _ in range(count))
    ]  # fmt: skip
    try:
        log.append([(event.key, codec.encode(event)) for event in events])
    finally:
        log.close()
    return {event.run_id for event in events if event.run_id is not None}


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_two_workers_hold_two_thousand_sleeping_async_runs_each_started_and_ended_once(
    cluster: Cluster,
) -> None:
    for _ in range(2):
        cluster.start_worker(concurrency=1000)
    with cluster.api() as api:
        job = create_job(
            api,
            name="nap",
            type="python",
            function="tests.jobs.sample:async_sleep",  # sleeps 1 s
            concurrency_policy="allow",
            max_concurrency=10_000,
        )

        # Appended to the log at once, as a backfill would: a trigger per HTTP call would
        # measure the API, not the workers.
        run_ids = request_runs(cluster, job["id"], RUNS)

        def all_succeeded() -> bool:
            total: int = api.get(
                "/api/runs", params={"job_id": "nap", "status": "completed", "limit": 1}
            ).json()["total"]
            return total == RUNS

        wait_until(all_succeeded, timeout=240, interval=0.5)
    seen, steps, order = run_events(cluster)
    for kind in ("RunStarted", "RunSucceeded"):
        counted = {run_id: n for (t, run_id), n in seen.items() if t == kind}
        assert counted.keys() == run_ids, kind
        assert set(counted.values()) == {1}, f"a {kind} appended more than once"
    bad = Counter(t for t, _ in seen if t in ("RunFailed", "RunTimedOut"))
    assert not bad, bad
    # The scheduler may take a run that just ended for lost (it read the run as running
    # from a read model behind the log, then found its lease released): harmless only
    # because the outcome came first in the run's partition, so the projection rejects it.
    for t, run_id in seen:
        if t == "RunLost":
            assert order["RunSucceeded", run_id] < order["RunLost", run_id], run_id
    # Held at once: far more runs than a worker has processes (the async pool is one).
    assert peak(steps) >= 100
