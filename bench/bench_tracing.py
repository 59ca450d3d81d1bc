"""The overhead of OpenTelemetry tracing on trigger -> start and on throughput, with
tracing off and on, alternating, in one run (issue 12 part 4).

    .venv/bin/python -m bench.bench_tracing [--rounds 3] [--latency-runs 100] \
        [--throughput-runs 2000] [--workers 1] [--concurrency 4] [--span-runs 20000]

Each round starts a fresh embedded cluster (``chronolog up`` with its scheduler, and
worker processes) twice, off then on, and measures in each:
- latency: ``bench_runs.latency``'s no-op shell job triggered over HTTP one run at a
  time; trigger -> start from the run's own timestamps;
- throughput: ``--throughput-runs`` ``RunRequested`` of a no-op python job appended at
  once to the cluster's log, then the time until every run completed. With tracing on,
  each carries a traceparent (as a traced API or scheduler gives them), so each run gets
  a dispatch span, an execution span and a job process that continues the trace.
"On" exports with OTLP over HTTP (the ``otlp`` exporter, batching) to a sink on
127.0.0.1 in this process that reads each request and answers 200: the spans are
encoded and sent as in production, with no collector's cost on the cluster's CPU.
CPU per run: user + system seconds of the cluster's processes divided by the runs; for
throughput over the measured phase (live descendants of this process, with the children
they reaped), for latency over the cluster's whole life (start-up included). Last, the
CPU the tracing calls of one run cost (a trigger span, a dispatch hop, an execution span
with its status), off and on, ``--span-runs`` times in a process of its own (its export
thread included, the sink's CPU not).
Writes bench/results/tracing.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx2 as httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from bench.auth import admin_headers  # noqa: E402
from bench.bench_runs import backfill_request, cluster, latency, wait  # noqa: E402
from chronolog import tracing  # noqa: E402
from chronolog.settings import load_settings  # noqa: E402
from chronolog.wiring import open_event_log  # noqa: E402
from events.codec import EventCodec  # noqa: E402
from events.model import Event, RunRequested, to_millis  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


class Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that reads and drops what it gets."""

    received: ClassVar[dict[str, int]] = {"requests": 0, "bytes": 0}

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length", 0))
        self.rfile.read(size)
        Sink.received["requests"] += 1
        Sink.received["bytes"] += size
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def otlp_sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, name="otlp-sink", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def cluster_cpu() -> float:
    """CPU seconds (user + system) of this process's live descendants and of the
    children they reaped."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = sum(int(v) for v in fields[11:15]) / TICKS
    mine = {os.getpid()}
    grown = True
    while grown:
        found = {pid for pid, parent in parents.items() if parent in mine} - mine
        grown = bool(found)
        mine |= found
    return sum(times[pid] for pid in mine - {os.getpid()})


def throughput(args: argparse.Namespace, traced: bool) -> dict[str, Any]:
    with (
        cluster(args.workers, args.concurrency, tracing_env(args, traced)) as (url, data, _, _),
        httpx.Client(base_url=url, timeout=60, headers=admin_headers(data)) as api,
    ):
        job = api.post(
            "/api/jobs",
            json={"name": "noop", "type": "python", "function": "tests.jobs.sample:noop",
                  "concurrency_policy": "allow", "max_concurrency": 10_000},
        ).json()  # fmt: skip
        codec = EventCodec.default()
        log = open_event_log(load_settings({}, data_dir=data))
        now = to_millis(datetime.now(UTC))
        events = [requested(job["id"], now, traced) for _ in range(args.throughput_runs)]
        cpu, began = cluster_cpu(), time.perf_counter()
        log.append([(e.key, codec.encode(e)) for e in events])
        log.close()

        def completed() -> int:
            total: int = api.get(
                "/api/runs", params={"job_id": "noop", "status": "completed", "limit": 1}
            ).json()["total"]
            return total

        wait(lambda: completed() == args.throughput_runs, 1800, 0.25)
        elapsed = time.perf_counter() - began
        spent = cluster_cpu() - cpu
    return {
        "runs": args.throughput_runs,
        "seconds": elapsed,
        "runs_per_s": args.throughput_runs / elapsed,
        "cpu_ms_per_run": spent * 1000 / args.throughput_runs,
    }


def requested(job_id: str, now: datetime, traced: bool) -> Event:
    parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01" if traced else None
    return backfill_request(job_id, RunRequested(trigger="backfill", traceparent=parent), now)


def timed_latency(args: argparse.Namespace, traced: bool) -> dict[str, Any]:
    # The cluster starts and stops inside: its processes are reaped by then, so their CPU
    # is in this process's children's usage (start-up and shut-down included).
    cpu = reaped_cpu()
    measured = latency(argparse.Namespace(runs=args.latency_runs), tracing_env(args, traced))
    measured["cpu_ms_per_run_incl_cluster_start"] = (reaped_cpu() - cpu) * 1000 / args.latency_runs
    return measured


def reaped_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def span_cost(sink: str, runs: int) -> dict[str, float]:
    """CPU microseconds per run of the tracing calls a run makes in Chronolog's processes
    (trigger span, dispatch hop, execution span with its status), in this process: off,
    then on with the OTLP exporter batching to the sink (its thread's CPU included)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    def one_run(index: int) -> None:
        with tracing.span("chronolog.trigger", attributes={"chronolog.requests": 1}) as root:
            parent = tracing.traceparent(root)
        run_id = f"run-{index}"
        hopped = tracing.hop("chronolog.dispatch", parent, run_id, "job-1", 1)
        attributes = {tracing.RUN_ID: run_id, tracing.JOB_ID: "job-1", tracing.ATTEMPT: 1}
        with tracing.span("chronolog.execute", hopped, attributes) as execution:
            tracing.mark(execution, tracing.STATUS, "succeeded")

    def cost() -> float:
        began = time.process_time()
        for index in range(runs):
            one_run(index)
        if tracing.enabled():
            tracing.flush()
        return (time.process_time() - began) * 1e6 / runs

    off = cost()
    provider = TracerProvider()
    exporter = OTLPSpanExporter(f"{sink}/v1/traces")
    # A queue for every span: the default (2048) drops spans made this fast, and
    # dropped spans would cost nothing to export.
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=3 * runs))
    tracing.enable(provider)
    try:
        on = cost()
    finally:
        tracing.disable()
        provider.shutdown()
    return {"off_us_per_run": off, "on_us_per_run": on}


def span_cost_apart(sink: str, runs: int) -> dict[str, float]:
    """``span_cost`` in a process of its own: the sink's CPU stays out of it."""
    code = "import json, sys; from bench.bench_tracing import span_cost; "
    code += "print(json.dumps(span_cost(sys.argv[1], int(sys.argv[2]))))"
    done = subprocess.run(
        [sys.executable, "-c", code, sink, str(runs)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def tracing_env(args: argparse.Namespace, traced: bool) -> dict[str, str]:
    if not traced:
        return {}
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": args.sink,
        "OTEL_SERVICE_NAME": "chronolog-bench",
    }


def median_of(rounds: list[dict[str, Any]], path: str) -> float:
    values = []
    for measured in rounds:
        value: Any = measured
        for key in path.split("."):
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


SUMMARY = (
    "latency.trigger_to_start.p50_ms",
    "latency.trigger_to_start.p99_ms",
    "throughput.runs_per_s",
    "throughput.cpu_ms_per_run",
    "latency.cpu_ms_per_run_incl_cluster_start",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs")
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--throughput-runs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--span-runs", type=int, default=20_000, help="for the span cost")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    measured: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    load_before = os.getloadavg()
    with otlp_sink() as args.sink:
        for index in range(args.rounds):
            for mode in ("off", "on"):
                sent = dict(Sink.received)
                one: dict[str, Any] = {
                    name: run(args, mode == "on") for name, run in MEASURES.items()
                }
                one["otlp_requests"] = Sink.received["requests"] - sent["requests"]
                one["otlp_bytes"] = Sink.received["bytes"] - sent["bytes"]
                print(f"round {index + 1} {mode}: {json.dumps(one)}", flush=True)
                measured[mode].append(one)
        spans = span_cost_apart(args.sink, args.span_runs)
        print(f"span cost: {json.dumps(spans)}", flush=True)
    result = {
        "median": {
            mode: {path: median_of(rounds, path) for path in SUMMARY}
            for mode, rounds in measured.items()
        },
        "rounds": measured,
        "span_cpu_per_run_in_process": spans,
        "exporter": "otlp over HTTP/protobuf, batching, to a local sink that drops it",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result["median"], indent=2))
    path = args.results / "tracing.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


MEASURES: dict[str, Callable[[argparse.Namespace, bool], dict[str, Any]]] = {
    "latency": timed_latency,
    "throughput": throughput,
}


if __name__ == "__main__":
    main()
