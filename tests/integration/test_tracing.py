"""OpenTelemetry traces (issue 12 part 4): the API, a scheduler round and a worker in this
process, the SDK exporting to memory; one trace from the trigger to the job's own spans.
And with tracing off, a worker and its job processes import nothing of opentelemetry."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.orm import Session

from api.app import create_app
from chronolog import tracing
from chronolog.serving import api_context
from chronolog.wiring import Runtime
from events.model import RunRequested
from projector import scheduler_reads
from scheduler.loop import Scheduler, SchedulerConfig
from tests.conftest import wait_until
from worker.executors import Executors
from worker.runner import Worker, WorkerConfig

REPO = Path(__file__).resolve().parents[2]
TRACED_JOB = {"type": "python", "function": "tests.jobs.traced:current_trace"}


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process, every span kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    yield exporter
    tracing.disable()
    provider.shutdown()


@pytest.fixture
def worker(running: Runtime) -> Iterator[Worker]:
    """A worker serving the default queue, in a thread of this process."""
    config = WorkerConfig(worker_id="w-traced", hostname="test", pid=os.getpid(), concurrency=2)
    stop = threading.Event()
    with Executors(python_processes=1) as executors:
        serving = Worker(config, running.log, running.codec, running.leases, executors)
        serving.register()
        thread = threading.Thread(target=serving.run, args=(stop,), name="worker")
        thread.start()
        yield serving
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()


def completed(client: TestClient, run_id: str, scheduler: Scheduler) -> object:
    """The run's result, once scheduler rounds have queued it and the worker ran it."""

    def run() -> dict[str, object]:
        body: dict[str, object] = client.get(f"/api/runs/{run_id}").json()
        return body

    def queued_by_a_round() -> bool:
        scheduler.step()
        return run()["status"] != "pending"

    wait_until(queued_by_a_round)
    wait_until(lambda: run()["status"] == "completed", timeout=30)
    return run()["result"]


def a_scheduler(
    running: Runtime, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Scheduler:
    return Scheduler(
        SchedulerConfig(node_id="s-traced"),
        running.log,
        running.codec,
        running.engine,
        leases=running.leases,
        progress=running.progress,
        clock=clock,
    )


def the_span(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    [found] = [span for span in spans if span.name == name]
    return found


def ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def parent_id(span: ReadableSpan) -> str:
    assert span.parent is not None, f"{span.name} has no parent"
    return f"{span.parent.span_id:016x}"


@pytest.mark.parametrize("read_model_url", ["sqlite"], indirect=True)
def test_one_trace_runs_from_the_trigger_through_the_dispatch_to_the_job(
    exported: InMemorySpanExporter, running: Runtime, worker: Worker
) -> None:
    scheduler = a_scheduler(running)
    with TestClient(create_app(api_context(running))) as client:
        made = client.post("/api/jobs", json={"name": "traced", **TRACED_JOB})
        assert made.status_code == 201, made.text
        answer = client.post("/api/jobs/traced/trigger")
        assert answer.status_code == 201, answer.text
        run_id = answer.json()["run_id"]
        assert answer.json()["status"] == "pending"  # the scheduler queues it, not the API

        result = completed(client, run_id, scheduler)

    spans = list(exported.get_finished_spans())
    trigger = the_span(spans, "chronolog.trigger")
    dispatch = the_span(spans, "chronolog.dispatch")
    execute = the_span(spans, "chronolog.execute")
    trace_id, trigger_id = ids(trigger)
    assert trigger.parent is None  # the trace begins at the API request
    assert {ids(span)[0] for span in (dispatch, execute)} == {trace_id}
    assert parent_id(dispatch) == trigger_id
    assert parent_id(execute) == ids(dispatch)[1]
    assert execute.attributes is not None
    assert dict(execute.attributes) == {
        tracing.RUN_ID: run_id,
        tracing.JOB_ID: made.json()["id"],
        tracing.ATTEMPT: 1,
        tracing.STATUS: "succeeded",
    }
    # In the job's process, the worker's execution span is the current one.
    assert result == {
        "trace_id": trace_id,
        "span_id": ids(execute)[1],
        "step_trace_id": trace_id,
    }
    # The trigger's context travelled in the run's RunRequested, into the read model.
    flags = int(trigger.get_span_context().trace_flags)  # type: ignore[union-attr]
    assert flags & 1  # sampled
    traceparent = f"00-{trace_id}-{trigger_id}-{flags:02x}"
    requested = [
        event.payload
        for partition in range(running.log.partitions)
        for record in running.log.read(partition, 0, 1000)
        if isinstance((event := running.codec.decode(record.value)).payload, RunRequested)
    ]
    assert [payload.traceparent for payload in requested] == [traceparent]
    with Session(running.engine) as session:
        assert scheduler_reads.traceparents(session, [run_id]) == {run_id: traceparent}


@pytest.mark.parametrize("read_model_url", ["sqlite"], indirect=True)
def test_a_scheduled_run_s_trace_begins_at_the_scheduler_s_fire(
    exported: InMemorySpanExporter, running: Runtime, worker: Worker
) -> None:
    # A minute ahead: the every-minute schedule is due at the first round.
    scheduler = a_scheduler(running, lambda: datetime.now(UTC) + timedelta(minutes=1))
    with TestClient(create_app(api_context(running))) as client:
        job = {"name": "fired", "schedule": "* * * * *", **TRACED_JOB}
        made = client.post("/api/jobs", json=job)
        assert made.status_code == 201, made.text
        job_id = made.json()["id"]
        wait_until(lambda: client.get(f"/api/jobs/{job_id}").status_code == 200)
        scheduler.step()
        wait_until(lambda: client.get("/api/runs", params={"job_id": job_id}).json()["total"] > 0)
        runs = client.get("/api/runs", params={"job_id": job_id}).json()["runs"]
        run_id = runs[-1]["id"]  # the oldest: a round crossing a minute may fire again
        result = completed(client, run_id, scheduler)

    spans = [
        s
        for s in exported.get_finished_spans()
        if (s.attributes or {}).get(tracing.RUN_ID) == run_id
    ]
    fire = the_span(spans, "chronolog.fire")
    dispatch = the_span(spans, "chronolog.dispatch")
    execute = the_span(spans, "chronolog.execute")
    assert fire.parent is None  # the scheduler's fire begins the trace
    trace_id, fire_id = ids(fire)
    assert {ids(span)[0] for span in (dispatch, execute)} == {trace_id}
    assert parent_id(dispatch) == fire_id
    assert parent_id(execute) == ids(dispatch)[1]
    assert fire.attributes is not None and fire.attributes["chronolog.trigger"] == "schedule"
    assert result == {"trace_id": trace_id, "span_id": ids(execute)[1], "step_trace_id": trace_id}


@pytest.mark.parametrize("read_model_url", ["sqlite"], indirect=True)
def test_a_batch_s_runs_share_its_trace_queued_by_the_api_or_the_scheduler(
    exported: InMemorySpanExporter, running: Runtime, worker: Worker
) -> None:
    scheduler = a_scheduler(running)
    # Admitted without state: the API queues it (and records its dispatch span) itself.
    async_job = {
        **TRACED_JOB,
        "function": "tests.jobs.traced:current_trace_async",
        "concurrency_policy": "allow",
        "max_concurrency": None,
    }
    with TestClient(create_app(api_context(running))) as client:
        for name, job in (("sync", TRACED_JOB), ("async", async_job)):
            assert client.post("/api/jobs", json={"name": name, **job}).status_code == 201
        answer = client.post("/api/runs", json={"runs": [{"job": "sync"}, {"job": "async"}]})
        assert answer.status_code == 201, answer.text
        run_ids = [run["run_id"] for run in answer.json()["runs"]]
        assert [run["status"] for run in answer.json()["runs"]] == ["pending", "queued"]
        results = [completed(client, run_id, scheduler) for run_id in run_ids]

    spans = list(exported.get_finished_spans())
    trace_id, trigger_id = ids(the_span(spans, "chronolog.trigger"))  # one for the batch
    for run_id, result in zip(run_ids, results, strict=True):
        of_run = [s for s in spans if (s.attributes or {}).get(tracing.RUN_ID) == run_id]
        dispatch = the_span(of_run, "chronolog.dispatch")
        execute = the_span(of_run, "chronolog.execute")
        assert (ids(dispatch)[0], parent_id(dispatch)) == (trace_id, trigger_id)
        assert (ids(execute)[0], parent_id(execute)) == (trace_id, ids(dispatch)[1])
        assert result == {
            "trace_id": trace_id,
            "span_id": ids(execute)[1],
            "step_trace_id": trace_id,
        }


OFF = textwrap.dedent(
    """
    import sys, threading
    from chronolog import tracing
    import chronolog.roles, worker.runner, worker.prefork_child, worker.async_child
    from tests.jobs.builders import make_request
    from worker.python_executor import PythonExecutor

    assert not tracing.configure("worker", {"OTEL_SERVICE_NAME": "named-but-not-traced"})
    executor = PythonExecutor(processes=1)
    try:
        request = make_request("python", function="tests.jobs.traced:opentelemetry_modules")
        result = executor.execute(request, threading.Event())
    finally:
        executor.close()
    assert result.status == "succeeded", result
    print(result.result)
    print(sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry"))
    """
)


def test_with_tracing_off_a_worker_and_its_jobs_import_no_opentelemetry() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", OFF],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "[]"]  # in the job's process; the worker's
