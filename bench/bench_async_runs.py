"""10,000 concurrently running async python runs on two workers (issue 11, item 1).

From the repository root:

    .venv/bin/python -m bench.bench_async_runs [--runs 10000] [--workers 2] \
        [--concurrency 5000] [--sleep 5] [--backend embedded|production|both]

Starts ``chronolog up --workers 0`` plus W ``chronolog worker --concurrency C``
processes, creates a job running ``bench.jobs:nap`` (``async def``: ``await
asyncio.sleep(5)``), triggers N runs through the API (the batch ``POST /api/runs`` when
the API has it, else single triggers over 16 parallel connections) or, with ``--trigger
log``, appends N ``RunRequested`` to the log at once (a backfill: what the workers do,
without the API's trigger path), and reports:

- ``trigger_s``: from the first trigger to the last answer;
- ``wall_s``: from the first trigger to the last outcome in the log (its ``occurred_at``);
- ``peak_rss_mib``: the highest sum of the RSS of the worker processes and all their
  children (the async pool and prefork children), sampled every 0.2 s from /proc
  (psutil is not installed here; /proc gives the same VmRSS);
- ``every_run_once``: whether every run's ``RunStarted`` and ``RunSucceeded`` are in the
  log exactly once; ``lost`` counts the scheduler's ``RunLost`` events (rejected ones
  included).

Targets (issue 11): wall <= 10 s, peak RSS <= 300 MiB. Writes
bench/results/async-runs[-production]-<trigger>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.auth import admin_headers  # noqa: E402
from bench.bench_runs import RESULTS, backfill_request, cluster, write  # noqa: E402
from bench.stack import backends, describe, selected  # noqa: E402
from chronolog.settings import load_settings  # noqa: E402
from chronolog.wiring import open_event_log  # noqa: E402
from events.codec import EventCodec  # noqa: E402
from events.model import RunRequested, to_millis  # noqa: E402

BATCH = 1000  # items per POST /api/runs


def tree_rss(pid: int) -> int:
    """Bytes of resident memory of ``pid`` and all its descendants (0 once gone)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        for task in tasks:
            try:
                pending.extend(int(p) for p in (task / "children").read_text().split())
            except OSError:
                continue
    return total


class PeakRss:
    """Samples the summed RSS of some process trees until stopped; keeps the peak."""

    def __init__(self, pids: list[int], interval: float = 0.2) -> None:
        self.pids = pids
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, sum(tree_rss(pid) for pid in self.pids))


def trigger_all(api: httpx.Client, runs: int) -> list[str]:
    """Trigger ``runs`` runs of ``nap``: batches if the API has them, else singles."""
    probe = api.post("/api/runs", json={"runs": [{"job": "nap"}]})
    if probe.status_code in (200, 201):
        ids = [item["run_id"] for item in probe.json()["runs"]]

        def batch(size: int) -> list[str]:
            answer = api.post("/api/runs", json={"runs": [{"job": "nap"}] * size})
            answer.raise_for_status()
            return [item["run_id"] for item in answer.json()["runs"]]

        sizes = [BATCH] * ((runs - 1) // BATCH) + [(runs - 1) % BATCH]
        with ThreadPoolExecutor(4) as pool:
            for found in pool.map(batch, [s for s in sizes if s]):
                ids.extend(found)
        return ids

    def single(_: int) -> str:
        answer = api.post("/api/jobs/nap/trigger")
        answer.raise_for_status()
        run_id: str = answer.json()["run_id"]
        return run_id

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(single, range(runs)))


def request_in_log(
    data: Path, backend: dict[str, str], job_id: str, runs: int, sleep: float
) -> list[str]:
    """``runs`` ``RunRequested`` appended to the cluster's log in one call (a backfill)."""
    log = open_event_log(load_settings(backend, data_dir=data))
    codec = EventCodec.default()
    now = to_millis(datetime.now(UTC))
    requested = RunRequested("backfill", parameters={"seconds": sleep})
    events = [backfill_request(job_id, requested, now) for _ in range(runs)]
    try:
        log.append([(event.key, codec.encode(event)) for event in events])
    finally:
        log.close()
    return [event.run_id for event in events if event.run_id is not None]


def log_events(data: Path, backend: dict[str, str]) -> list[tuple[str, str, datetime]]:
    """(type, run id, occurred_at) of every run event in the cluster's log."""
    log = open_event_log(load_settings(backend, data_dir=data))
    codec = EventCodec.default()
    found: list[tuple[str, str, datetime]] = []
    try:
        for partition, marks in log.all_watermarks().items():
            offset = marks.low
            while offset < marks.high:
                records = log.read(partition, offset, 5000)
                for record in records:
                    event = codec.decode(record.value)
                    if event.run_id is not None:
                        found.append((event.type, event.run_id, event.occurred_at))
                offset = records[-1].offset + 1
    finally:
        log.close()
    return found


def measure(args: argparse.Namespace, backend: dict[str, str]) -> dict[str, Any]:
    extra = {**backend, "CHRONOLOG_API_RATE_LIMIT": "0"}
    with (
        cluster(args.workers, args.concurrency, extra) as (url, data, workers, _),
        httpx.Client(base_url=url, timeout=120, headers=admin_headers(data)) as api,
        PeakRss([worker.pid for worker in workers]) as rss,
    ):
        created = api.post(
            "/api/jobs",
            json={"name": "nap", "type": "python", "function": "bench.jobs:nap",
                  "parameters": {"seconds": args.sleep}, "concurrency_policy": "allow",
                  "max_concurrency": 10_000},
        )  # fmt: skip
        created.raise_for_status()
        began_wall = datetime.now(UTC)
        began = time.perf_counter()
        if args.trigger == "api":
            run_ids = trigger_all(api, args.runs)
        else:
            run_ids = request_in_log(data, backend, created.json()["id"], args.runs, args.sleep)
        trigger_s = time.perf_counter() - began
        deadline = time.monotonic() + 600
        while True:
            events = log_events(data, backend)
            ended = {run for kind, run, _ in events if kind == "RunSucceeded"}
            if len(ended) >= args.runs or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    counts = Counter((kind, run) for kind, run, _ in events)
    wanted = set(run_ids)
    once = all(
        {run for (k, run), n in counts.items() if k == kind and n == 1} == wanted
        and sum(1 for (k, _) in counts if k == kind) == len(wanted)
        for kind in ("RunStarted", "RunSucceeded")
    )
    last = max(at for kind, _, at in events if kind == "RunSucceeded")
    wall_s = (last - began_wall).total_seconds()
    phases = {
        kind: {
            "first_s": round((min(times) - began_wall).total_seconds(), 2),
            "last_s": round((max(times) - began_wall).total_seconds(), 2),
        }
        for kind in ("RunQueued", "RunStarted", "RunSucceeded")
        if (times := [at for k, _, at in events if k == kind])
    }
    return {
        "phases": phases,  # from the first trigger: when the scheduler queued, workers ran
        "runs": args.runs,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "sleep_s": args.sleep,
        "trigger": args.trigger,
        "trigger_s": round(trigger_s, 2),
        "wall_s": round(wall_s, 2),
        "after_triggering_s": round(wall_s - trigger_s, 2),
        "peak_rss_mib": round(rss.peak / 2**20, 1),
        "every_run_once": once,
        "lost": sum(n for (k, _), n in counts.items() if k == "RunLost"),
        "failed": sum(n for (k, _), n in counts.items() if k in ("RunFailed", "RunTimedOut")),
        "targets": {"wall_s": "<= 10", "peak_rss_mib": "<= 300"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=5000)
    parser.add_argument("--sleep", type=float, default=5.0)
    parser.add_argument("--backend", choices=["embedded", "production", "both"], default="embedded")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--trigger",
        choices=["api", "log"],
        default="api",
        help="api: through the API; log: RunRequested appended to the log at once",
    )
    args = parser.parse_args()
    for name in selected(args.backend):
        with backends(name) as backend_env:
            stack = describe(backend_env)
            result = measure(args, backend_env)
        result["stack"] = stack
        result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
        print(f"--- {name}")
        print(json.dumps(result, indent=2))
        suffix = ("" if name == "embedded" else f"-{name}") + f"-{args.trigger}"
        write(args.results / f"async-runs{suffix}.json", result)


if __name__ == "__main__":
    main()
