"""Events per CPU-second of the projector: replay and live, in this process.

On a shared machine wall-clock rates follow the other load; the projector's own CPU
time does much less, so two builds can be compared by running this from each checkout
in turn:

    .venv/bin/python -m bench.projector_cpu [--events 40000] [--batch-size 5000]
        [--backend sqlite|postgresql] [--profile N] [--repeat N] [--runs-per-append R]

``sqlite``: the read model is a SQLite file, written wholly in this process.
``postgresql``: a local PostgreSQL 15 (started here by the test suite's helper, with
fsync off as the tests have it, stopped after); the CPU-seconds counted are this
process's only, the server's are not (its wall-clock rate is printed too).
``--profile N``: profile the live run with cProfile and print its N costliest
functions by own time. ``--runs-per-append R``: instead of the mixed history, run
lifecycles (requested, queued, started, succeeded) of 20 jobs appended R runs at a
time, as workers and the API append them at run time, and projected in batches of
those appends (``--batch-size`` is then 4R): what a live projector's small batches
cost, per event and per batch (a batch of a dozen events is mostly per-batch work).
``--repeat N``: replay and project N times, each into a fresh read model, and print
every rate and the best (on a shared machine the best is the run the others disturbed
least).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from bench.bench_projector import T0, fill  # noqa: E402
from chronolog.wiring import open_read_model  # noqa: E402
from eventlog.sqlite import SqliteEventLog  # noqa: E402
from events.codec import EventCodec  # noqa: E402
from events.model import (  # noqa: E402
    Event,
    JobCreated,
    JobSpec,
    RunQueued,
    RunRequested,
    RunStarted,
    RunSucceeded,
)
from projector.loop import Projector  # noqa: E402
from projector.replay import replay  # noqa: E402


@contextmanager
def read_models(backend: str, scratch: Path) -> Iterator[Callable[[str], str]]:
    """Name -> the URL of a fresh read model on ``backend``."""
    if backend == "sqlite":
        yield lambda name: f"sqlite:///{scratch / f'{name}.db'}"
        return
    from tests.services.postgres import database_factory, local_postgres

    def migrated(create: Callable[[], str]) -> str:
        url = create()
        open_read_model(url, upgrade=True).dispose()
        return url

    with local_postgres() as server, database_factory(server.url) as create:
        yield lambda _name: migrated(create)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--skip-replay", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, metavar="N")
    parser.add_argument("--runs-per-append", type=int, default=0, metavar="R")
    args = parser.parse_args()
    codec = EventCodec.default()
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch, read_models(args.backend, Path(scratch)) as url:
        log = SqliteEventLog(Path(scratch) / "events.db", partitions=12)
        if args.runs_per_append:
            args.events = fill_run_lifecycles(log, codec, args.events // 4, args.runs_per_append)
            args.batch_size = 4 * args.runs_per_append
            args.skip_replay = True
        else:
            fill(log, codec, args.events)
        total = args.events
        for round_ in range(args.repeat):
            if not args.skip_replay:
                engine = open_read_model(url(f"replay-{round_}"))
                wall, cpu = time.perf_counter(), time.process_time()
                replay(log, engine, codec)
                rate = total / (time.process_time() - cpu)
                best["replay"] = max(best.get("replay", 0.0), rate)
                print(
                    f"{args.backend} replay: {total / (time.perf_counter() - wall):,.0f} "
                    f"events/s wall, {rate:,.0f} per CPU-second"
                )
                engine.dispose()
            best["live"] = max(best.get("live", 0.0), live(log, url(f"live-{round_}"), args))
        log.close()
    if args.repeat > 1:
        print(", ".join(f"best {name}: {rate:,.0f} per CPU-second" for name, rate in best.items()))


def fill_run_lifecycles(log: SqliteEventLog, codec: EventCodec, runs: int, per_append: int) -> int:
    """20 jobs, then ``runs`` run lifecycles appended ``per_append`` runs at a time (each
    append its own timestamp, so the projector's batches follow the appends); the
    number of events appended."""
    jobs = [f"job-{n:04d}" for n in range(20)]
    created = [
        Event(JobCreated(JobSpec(name=job, type="python", function="m.f")), T0, "bench", job_id=job)
        for job in jobs
    ]
    log.append([(e.key, codec.encode(e)) for e in created])
    appended = len(created)
    for first in range(0, runs, per_append):
        events = []
        for number in range(first, min(runs, first + per_append)):
            job, run_id = jobs[number % len(jobs)], f"run-{number}"
            at = T0 + timedelta(milliseconds=number)
            lifecycle = (
                RunRequested(trigger="manual"),
                RunQueued(queue="default"),
                RunStarted(worker_id="w1", lease_token=1),
                RunSucceeded(worker_id="w1", lease_token=1, duration_ms=3),
            )
            events += [
                Event(p, at, "bench", job_id=job, run_id=run_id, attempt=1) for p in lifecycle
            ]
        log.append([(e.key, codec.encode(e)) for e in events])
        appended += len(events)
    return appended


def live(log: SqliteEventLog, url: str, args: argparse.Namespace) -> float:
    """Project the whole log into the fresh read model at ``url``; events per CPU-second."""
    total: int = args.events
    engine = open_read_model(url)
    projector = Projector(log, engine, EventCodec.default(), group=url, batch_size=args.batch_size)
    profile = cProfile.Profile() if args.profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    batches = 0
    while projector.applied < total:
        batches += projector.step(timeout=0.1) > 0
    if profile is not None:
        profile.disable()
    spent = time.process_time() - cpu
    rate = total / spent
    print(
        f"{args.backend} live (batches of {args.batch_size}): "
        f"{total / (time.perf_counter() - wall):,.0f} events/s wall, {rate:,.0f} per CPU-second"
        f" ({batches} batches, {spent * 1000 / batches:.2f} CPU-ms each)"
    )
    projector.close()
    engine.dispose()
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
    return rate


if __name__ == "__main__":
    main()
