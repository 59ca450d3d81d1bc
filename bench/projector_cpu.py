"""Events per CPU-second of the projector into SQLite: replay and live, in this process.

On a shared machine wall-clock rates follow the other load; the projector's own CPU
time does much less, so two builds can be compared by running this from each checkout
in turn (the projector into SQLite runs wholly in this process):

    .venv/bin/python -m bench.projector_cpu [--events 40000] [--batch-size 5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    total = args.events
    codec = EventCodec.default()
    with tempfile.TemporaryDirectory() as scratch:
        log = SqliteEventLog(Path(scratch) / "events.db", partitions=12)
        fill(log, codec, total)
        engine = open_read_model(f"sqlite:///{Path(scratch) / 'replay.db'}")
        wall, cpu = time.perf_counter(), time.process_time()
        replay(log, engine, codec)
        print(
            f"replay: {total / (time.perf_counter() - wall):,.0f} events/s wall, "
            f"{total / (time.process_time() - cpu):,.0f} per CPU-second"
        )
        engine.dispose()
        engine = open_read_model(f"sqlite:///{Path(scratch) / 'live.db'}")
        projector = Projector(log, engine, codec, group="cpu", batch_size=args.batch_size)
        wall, cpu = time.perf_counter(), time.process_time()
        while projector.applied < total:
            projector.step(timeout=0.1)
        print(
            f"live (batches of {args.batch_size}): "
            f"{total / (time.perf_counter() - wall):,.0f} events/s wall, "
            f"{total / (time.process_time() - cpu):,.0f} per CPU-second"
        )
        projector.close()
        engine.dispose()
        log.close()


if __name__ == "__main__":
    main()
