"""What ``/metrics`` renders: ``chronolog up``'s directory, added up from the processes
that wrote there (real processes in multiprocess mode, then read back), and the state
gauges when their read fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from metrics.exposition import MULTIPROC_ENV, _LiveFiles
from metrics.prometheus import PrometheusMetrics
from metrics.state import StateCollector, StateReading

WRITER = textwrap.dedent(
    """
    import sys
    from prometheus_client import CollectorRegistry
    from metrics.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics(CollectorRegistry())
    metrics.worker_started(4)
    metrics.run_started("default", 0.25)
    metrics.run_finished("report", "default", "succeeded", 1.5)
    if sys.argv[1] == "stay":
        print("written", flush=True)
        sys.stdin.read()  # alive until the test closes stdin
    """
)


def samples(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(_LiveFiles(directory))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_of_every_process_add_up_and_gauges_of_dead_ones_are_dropped(
    tmp_path: Path,
) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    command = [sys.executable, "-c", WRITER]
    subprocess.run([*command, "exit"], env=env, check=True, timeout=60)  # a worker that died
    alive = subprocess.Popen(
        [*command, "stay"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert alive.stdout is not None and alive.stdout.readline().strip() == "written"
        found = samples(tmp_path)
    finally:
        alive.communicate(timeout=60)
    runs = (
        "chronolog_runs_total",
        (("job", "report"), ("queue", "default"), ("status", "succeeded")),
    )
    assert found[runs] == 2  # both processes' runs happened
    assert found[("chronolog_run_lateness_seconds_count", (("queue", "default"),))] == 2
    assert found[("chronolog_worker_slots", ())] == 4  # the dead worker's slots are gone
    assert found[("chronolog_worker_busy_slots", ())] == 1
    assert ("chronolog_worker_slots", ()) not in samples(tmp_path)  # now both are dead


def test_a_failed_state_read_drops_only_the_state_gauges_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def unreadable() -> StateReading:
        raise ConnectionError("lease store down")

    registry = CollectorRegistry()
    PrometheusMetrics(registry).worker_started(2)
    registry.register(StateCollector(unreadable))
    names = {f.name for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert "chronolog_worker_slots" in names
    assert "chronolog_queue_depth" not in names
    assert "state gauges not read for this scrape" in caplog.text
