"""Events per CPU-second of the projector: replay and live, in this process.

On a shared machine wall-clock rates follow the other load; the projector's own CPU
time does much less, so two builds can be compared by running this from each checkout
in turn:

    .venv/bin/python -m bench.projector_cpu [--events 40000] [--batch-size 5000]
        [--backend sqlite|postgresql] [--profile N] [--repeat N]

``sqlite``: the read model is a SQLite file, written wholly in this process.
``postgresql``: a local PostgreSQL 15 (started here by the test suite's helper, with
fsync off as the tests have it, stopped after); the CPU-seconds counted are this
process's only, the server's are not (its wall-clock rate is printed too).
``--profile N``: profile the live run with cProfile and print its N costliest
functions by own time. ``--repeat N``: replay and project N times, each into a fresh
read model, and print every rate and the best (on a shared machine the best is the run
the others disturbed least).
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from bench.bench_projector import fill  # noqa: E402
from chronolog.wiring import open_read_model  # noqa: E402
from eventlog.sqlite import SqliteEventLog  # noqa: E402
from events.codec import EventCodec  # noqa: E402
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
    args = parser.parse_args()
    total = args.events
    codec = EventCodec.default()
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch, read_models(args.backend, Path(scratch)) as url:
        log = SqliteEventLog(Path(scratch) / "events.db", partitions=12)
        fill(log, codec, total)
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


def live(log: SqliteEventLog, url: str, args: argparse.Namespace) -> float:
    """Project the whole log into the fresh read model at ``url``; events per CPU-second."""
    total: int = args.events
    engine = open_read_model(url)
    projector = Projector(log, engine, EventCodec.default(), group=url, batch_size=args.batch_size)
    profile = cProfile.Profile() if args.profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    while projector.applied < total:
        projector.step(timeout=0.1)
    if profile is not None:
        profile.disable()
    rate = total / (time.process_time() - cpu)
    print(
        f"{args.backend} live (batches of {args.batch_size}): "
        f"{total / (time.perf_counter() - wall):,.0f} events/s wall, {rate:,.0f} per CPU-second"
    )
    projector.close()
    engine.dispose()
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
    return rate


if __name__ == "__main__":
    main()
