"""Do concurrent appends of one event each share durable writes? (issue 11, item 2)

    .venv/bin/python -m bench.bench_append_concurrency [--appends 2000] [--threads 1,8,32]
                                                       [--kafka host:port]

Appends one small record per call, as an API handling one trigger per request does,
from each number of ``--threads`` at once, on the embedded SQLite log (group commit: a
commit under way collects the appends that arrive meanwhile) and on a Kafka topic (one
shared idempotent producer; the local Tansu broker of the tests unless ``--kafka`` names
one). If concurrent calls share writes, appends/s grows with the threads while the
latency of one call stays near one write's. Writes bench/results/append-concurrency.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from eventlog.kafka import KafkaEventLog  # noqa: E402
from eventlog.port import EventLog  # noqa: E402
from eventlog.sqlite import SqliteEventLog  # noqa: E402


@contextmanager
def kafka_bootstrap(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    from tests.services.kafka import local_tansu

    with local_tansu() as broker:
        yield broker.bootstrap


def measure(log: EventLog, appends: int, threads: int) -> dict[str, Any]:
    latencies: list[float] = []
    value = b"x" * 200  # about a RunRequested's size

    def share(count: int) -> None:
        for _ in range(count):
            began = time.perf_counter()
            log.append([(f"job-{uuid.uuid4()}", value)])
            latencies.append((time.perf_counter() - began) * 1000)

    shares = [appends // threads + (1 if i < appends % threads else 0) for i in range(threads)]
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(share, shares))
    elapsed = time.perf_counter() - began
    return {
        "threads": threads,
        "appends_per_s": appends / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": statistics.quantiles(latencies, n=100, method="inclusive")[98],
    }


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--threads", type=numbers, default=[1, 8, 32])
    parser.add_argument("--kafka", help="host:port of a running broker (default: local Tansu)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {"sqlite": [], "kafka": []}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        bootstrap = stack.enter_context(kafka_bootstrap(args.kafka))
        logs: dict[str, EventLog] = {
            "sqlite": SqliteEventLog(scratch / "events.db", partitions=12),
            "kafka": KafkaEventLog(
                bootstrap, topic=f"bench.append.{uuid.uuid4().hex[:8]}", partitions=12
            ),
        }
        for name, log in logs.items():
            stack.callback(log.close)
            measure(log, 100, 1)  # warm up: connections, the producer id
            for threads in args.threads:
                result = measure(log, args.appends, threads)
                results[name].append(result)
                print(name, json.dumps(result))
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "append-concurrency.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
