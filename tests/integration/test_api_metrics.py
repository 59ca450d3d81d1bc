"""``/metrics`` of one API process over a real embedded runtime: on, the state gauges
are read at scrape time; off (``CHRONOLOG_METRICS=off``), there is no route and a
metrics port is refused."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from chronolog.serving import api_context
from chronolog.wiring import Runtime
from leases.port import QueueItem
from metrics.prometheus import PrometheusMetrics
from tests.conftest import wait_until


def gauges(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_with_metrics_on_the_state_gauges_are_read_at_scrape_time(running: Runtime) -> None:
    context = dataclasses.replace(
        api_context(running), metrics=PrometheusMetrics(CollectorRegistry())
    )
    with TestClient(create_app(context)) as client:
        job = {"name": "render", "type": "shell", "command": "true", "queue": "gpu"}
        assert client.post("/api/jobs", json=job).status_code == 201
        assert client.post("/api/jobs/render/trigger").status_code == 201
        for run in ("run-a", "run-b"):
            running.leases.push("gpu", QueueItem(run, 0, b"{}"))
        response = client.get("/metrics")
        lag = ("chronolog_projector_lag_events", ())
        # A trigger answers before the projector applies it: the lag drains to 0.
        wait_until(lambda: gauges(client.get("/metrics").text)[lag] == 0, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = gauges(response.text)
    assert found[("chronolog_queue_depth", (("queue", "gpu"),))] == 2
    assert found[("chronolog_workers_alive", ())] == 0
    assert found[lag] in (0, 1)  # the trigger's event, unless already applied
    assert found[("chronolog_api_triggers_total", (("result", "created"),))] == 1


def test_with_metrics_off_there_is_no_route(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404


def test_a_metrics_port_with_metrics_off_is_refused_with_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOLOG_")}
    env["CHRONOLOG_METRICS"] = "off"
    command = [sys.executable, "-m", "chronolog", "scheduler", "--data-dir", str(tmp_path)]
    done = subprocess.run(
        [*command, "--metrics-port", "9102"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "--metrics-port (or CHRONOLOG_METRICS_PORT) needs metrics on" in done.stderr
