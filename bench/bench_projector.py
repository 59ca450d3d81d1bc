"""Events projected per second into the read model: embedded SQLite, or PostgreSQL from Kafka.

From the repository root (as a module or as a file, both work):

    .venv/bin/python -m bench.bench_projector [--events 100000] [--backend B]

B is ``embedded`` (the default): a realistic mix (job creates/updates/pauses and run
events) appended to a fresh SQLite log, drained into fresh SQLite read models;
``production``: the same history appended to a fresh topic (12 partitions) on a local
Tansu broker, drained into fresh databases on a durable PostgreSQL (fsync on; see
bench/stack.py); ``both``: embedded, then production, in one invocation.

For each batch size (100, 1000, 5000) a Projector (as ``chronolog projector`` runs it,
polling with a 0.1 s timeout) drains the whole log into a fresh read model, then a full
``replay`` of the same log is timed into another. Per batch size:

- ``projected_per_s_batch_N``: events / seconds from the first poll to the last commit.
  On Kafka this includes the consumer-group join (about 1 s on Tansu, half its session
  timeout), which a long-running projector pays once;
- ``steady_per_s_batch_N``: the same without the first batch (and so without the join);
- ``mean_batch_N``: events per transaction (a Kafka poll returns what has been fetched,
  which may be fewer than N);
- production only, ``two_processes_per_s_batch_5000``: two ``chronolog projector``
  processes in one consumer group splitting the partitions, between 10% and 90% applied.

Issue 11's targets: >= 20,000 events/s into SQLite and into PostgreSQL (one process),
batched: ``target`` compares the best steady rate with it; and >= 30,000 events/s
replayed into an empty read model: ``replay_target``. Writes
bench/results/projector.json (embedded), projector-production.json, and with ``both`` also
projector-compare.json. ``--results DIR`` writes them elsewhere (e.g. for a smoke run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from chronolog.settings import load_settings
from chronolog.wiring import open_event_log, open_read_model
from eventlog.port import EventLog
from eventlog.sqlite import SqliteEventLog
from events.codec import EventCodec
from events.model import (
    Event,
    JobCreated,
    JobPaused,
    JobResumed,
    JobSpec,
    JobUpdated,
    Payload,
    RunQueued,
    RunRequested,
)
from projector.batch import read_checkpoints
from projector.loop import Projector
from projector.replay import replay

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from bench.stack import Backend, describe, production_services, selected  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=UTC)
BATCH_SIZES = (100, 1000, 5000)
TARGET_PER_S = 20_000.0  # issues 4 and 11: events projected per second, one process, batched
REPLAY_TARGET_PER_S = 30_000.0  # issue 11: replay into an empty read model
POLL_TIMEOUT = 0.1  # what Projector.run polls with


def history(total: int) -> list[Event]:
    """Per job: created, updated, paused, resumed, then run events: 10 events a job."""
    events: list[Event] = []
    job = 0
    while len(events) < total:
        job_id = f"job-{job:08d}"
        spec = JobSpec(
            name=f"bench-{job}",
            type="python",
            function="m.f",
            schedule="*/5 * * * *",
            tags=("a", "b"),
        )
        payloads: list[Payload] = [
            JobCreated(spec),
            JobUpdated(dataclasses.replace(spec, retries=1), ("retries",)),
            JobPaused(),
            JobResumed(),
        ]
        payloads += [RunRequested(trigger="schedule"), RunQueued(queue="default")] * 3
        for i, payload in enumerate(payloads):
            run_id = (
                f"run-{job}-{i // 2}" if isinstance(payload, RunRequested | RunQueued) else None
            )
            at = T0 + timedelta(seconds=job, milliseconds=i)
            events.append(
                Event(payload=payload, occurred_at=at, actor="bench", job_id=job_id, run_id=run_id)
            )
        job += 1
    return events[:total]


def applied(engine: Engine) -> int:
    with Session(engine) as session:
        return sum(read_checkpoints(session).values())


@dataclasses.dataclass(frozen=True)
class Setup:
    """A log holding the history, and where fresh read models come from."""

    log: EventLog
    read_model: Callable[[str], str]  # a name -> the URL of a fresh, migrated read model


@contextmanager
def embedded(directory: Path) -> Iterator[tuple[Setup, dict[str, str]]]:
    log = SqliteEventLog(directory / "events.db", partitions=12)
    try:
        yield Setup(log, lambda name: f"sqlite:///{directory / f'{name}.db'}"), {}
    finally:
        log.close()


@contextmanager
def production(directory: Path) -> Iterator[tuple[Setup, dict[str, str]]]:
    with production_services() as services:
        env = services.env()
        log = open_event_log(load_settings(env, data_dir=directory))  # a fresh Kafka topic
        try:
            yield Setup(log, lambda _name: services.database()), env
        finally:
            log.close()


SETUPS: dict[Backend, Callable[[Path], AbstractContextManager[tuple[Setup, dict[str, str]]]]] = {
    "embedded": embedded,
    "production": production,
}


def fill(log: EventLog, codec: EventCodec, total: int) -> None:
    events = history(total)
    for start in range(0, len(events), 5000):
        chunk = events[start : start + 5000]
        log.append([(e.key, codec.encode(e)) for e in chunk])


def time_projection(
    setup: Setup, codec: EventCodec, batch_size: int, total: int
) -> dict[str, float | None]:
    engine = open_read_model(setup.read_model(f"read-{batch_size}"))
    group = f"bench-projector-{batch_size}-{uuid.uuid4().hex[:8]}"  # no rebalance with others
    projector = Projector(setup.log, engine, codec, group=group, batch_size=batch_size)
    batches = 0
    first_at: float | None = None
    first_count = 0
    start = time.perf_counter()
    while projector.applied < total:
        if projector.step(timeout=POLL_TIMEOUT):
            batches += 1
            if first_at is None:
                first_at, first_count = time.perf_counter(), projector.applied
    elapsed = time.perf_counter() - start
    assert applied(engine) == total
    projector.close()
    engine.dispose()
    steady = None
    if first_at is not None and first_count < total:
        steady = (total - first_count) / (start + elapsed - first_at)
    return {
        "per_s": total / elapsed,
        "steady_per_s": steady,
        "first_batch_s": None if first_at is None else first_at - start,
        "mean_batch": total / batches,
    }


def time_projector_processes(
    env: dict[str, str], engine_url: str, total: int, processes: int = 2
) -> dict[str, float]:
    """``processes`` ``chronolog projector`` processes in one consumer group (the
    production shape) draining the log into a fresh database. The rate is taken between
    10% and 90% applied, so process start-up and the group join are left out."""
    engine = open_read_model(engine_url)
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "chronolog", "projector", "--batch-size", "5000"],
            env={**os.environ, **env, "CHRONOLOG_DATABASE_URL": engine_url},
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    marks: dict[float, float] = {}
    try:
        while (count := applied(engine)) < total:
            for fraction in (0.1, 0.9):
                if count >= total * fraction and fraction not in marks:
                    marks[fraction] = time.perf_counter()
            time.sleep(0.02)
        marks.setdefault(0.9, time.perf_counter())
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=30)
        engine.dispose()
    return {"per_s": 0.8 * total / (marks[0.9] - marks[0.1]), "processes": processes}


def time_replay(setup: Setup, codec: EventCodec, total: int) -> float:
    engine = open_read_model(setup.read_model("replay"))
    start = time.perf_counter()
    count = replay(setup.log, engine, codec)
    elapsed = time.perf_counter() - start
    assert count == total
    engine.dispose()
    return total / elapsed


def measure(backend: Backend, total: int) -> dict[str, Any]:
    codec = EventCodec.default()
    results: dict[str, Any] = {"backend": backend}
    with tempfile.TemporaryDirectory() as scratch, SETUPS[backend](Path(scratch)) as (setup, env):
        results["stack"] = describe(env)
        fill(setup.log, codec, total)
        for size in BATCH_SIZES:
            timed = time_projection(setup, codec, size, total)
            results[f"projected_per_s_batch_{size}"] = timed["per_s"]
            results[f"steady_per_s_batch_{size}"] = timed["steady_per_s"]
            results[f"first_batch_s_batch_{size}"] = timed["first_batch_s"]
            results[f"mean_batch_{size}"] = timed["mean_batch"]
        results["replay_per_s"] = time_replay(setup, codec, total)
        if env:  # several projectors share a Kafka topic's partitions; SQLite has one
            group = time_projector_processes(env, setup.read_model("group"), total)
            results["two_processes_per_s_batch_5000"] = group["per_s"]
    results["events"] = total
    # Steady state: a running projector pays the group join once, not per batch.
    # The target is for one process; two processes are reported beside it.
    best = max(
        results[f"steady_per_s_batch_{size}"] or results[f"projected_per_s_batch_{size}"]
        for size in BATCH_SIZES
    )
    results["target"] = {
        "metric": "best of steady_per_s_batch_N (projected_per_s_batch_N where one batch held"
        " all), one projector process",
        "goal": f">= {TARGET_PER_S:g}",
        "value": best,
        "met": best >= TARGET_PER_S,
    }
    results["replay_target"] = {
        "metric": "replay_per_s",
        "goal": f">= {REPLAY_TARGET_PER_S:g}",
        "value": results["replay_per_s"],
        "met": results["replay_per_s"] >= REPLAY_TARGET_PER_S,
    }
    results["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    return results


def compare(results: dict[Backend, dict[str, Any]]) -> dict[str, Any]:
    rates = [
        *(f"{kind}_per_s_batch_{size}" for size in BATCH_SIZES for kind in ("projected", "steady")),
        "replay_per_s",
    ]
    metrics: dict[str, dict[str, float | None]] = {}
    for name in rates:
        embedded_rate = results["embedded"][name]
        production_rate = results["production"][name]
        ratio = None
        if embedded_rate and production_rate:
            ratio = round(production_rate / embedded_rate, 3)
        metrics[name] = {
            "embedded": embedded_rate,
            "production": production_rate,
            "production_over_embedded": ratio,
        }
    return {
        "events": results["embedded"]["events"],
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": metrics,
        "targets": {backend: result["target"] for backend, result in results.items()},
        "results": results,
    }


def show(results: dict[str, Any]) -> None:
    for name, value in results.items():
        if isinstance(value, float | int) and not isinstance(value, bool):
            print(f"{name:>32}: {value:,.2f}" if value < 100 else f"{name:>32}: {value:,.0f}")
        elif value is None:
            print(f"{name:>32}: -")
    print(f"{'target met':>32}: {results['target']['met']} ({results['target']['goal']})")
    replayed = results["replay_target"]
    print(f"{'replay target met':>32}: {replayed['met']} ({replayed['goal']})")


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--backend", choices=["embedded", "production", "both"], default="embedded")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON files go")
    args = parser.parse_args()
    results: dict[Backend, dict[str, Any]] = {}
    for backend in selected(args.backend):
        print(f"--- {backend}")
        results[backend] = measure(backend, args.events)
        show(results[backend])
        name = "projector.json" if backend == "embedded" else f"projector-{backend}.json"
        write(args.results / name, results[backend])
    if len(results) == 2:
        write(args.results / "projector-compare.json", compare(results))


if __name__ == "__main__":
    main()
