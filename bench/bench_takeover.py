"""Time for a standby scheduler to take over when the leader is killed (SIGKILL).

From the repository root (as a module or as a file, both work):

    .venv/bin/python -m bench.bench_takeover [--rounds 10] [--backend B] [--leader-ttl 5]

B is ``embedded`` (the default: SQLite log, read model and lease store in one data dir),
``production`` (a local Tansu broker, a durable PostgreSQL and Redis, started for the
run: see bench/stack.py) or ``both`` (embedded, then production, in one invocation).

The cluster: ``chronolog up --workers 0 --no-scheduler`` (API and projector) and two
``chronolog scheduler`` processes, every process with ``CHRONOLOG_LEADER_TTL`` = 5 s, the
default (``--leader-ttl`` changes it). Each round finds the leader (the node id a
scheduler prints first, ``Scheduler <id> running on ...``, as ``/api/health`` reports it
under ``scheduler.leader``), waits 1 s plus a random part of a renewal period (so kills
fall anywhere in the leader's renewal cycle), SIGKILLs it and times until:

- ``kill_to_takeover_s``: the leader lease names the standby. Polled (every ``--poll`` s)
  from the lease store itself, the record ``/api/health`` reports: on Kafka the health
  endpoint takes over a second (it probes each of the 12 partitions' watermarks), too
  coarse to time with. ``/api/health`` is asked once after each takeover, to check it
  names the standby; ``health_request_s`` is how long it took;
- ``kill_to_lease_expired_s``: the lease stopped naming the killed leader;
- ``kill_to_leading_log_s``: the standby logged "leading the scheduler" (its JSON log's
  timestamp, millisecond precision, against the wall clock at the kill);
- ``lease_left_at_kill_s``: how long the killed leader's lease still had to run.

A fresh standby replaces the killed leader before the next round. The leader renews its
lease every TTL/3 and a standby retries every TTL/3, so a takeover is expected between
about 2/3 and 4/3 of the TTL after the kill; issue 4's target is "within the leader
lease TTL" (``target``: the slowest round's ``kill_to_takeover_s``).

Writes bench/results/takeover-<backend>.json, and with ``both`` also
takeover-compare.json. ``--results DIR`` writes them elsewhere (e.g. for a smoke run);
``--logs DIR`` keeps the processes' logs.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx

from chronolog.settings import load_settings
from chronolog.wiring import open_lease_store
from leases.dispatch import SCHEDULER_LEADER_KEY
from leases.port import Lease, LeaseStore

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from bench.bench_runs import env, free_port, wait  # noqa: E402
from bench.stack import Backend, backends, describe, selected  # noqa: E402

STOP_TIMEOUT = 30.0
HEALTH_TIMEOUT = 30.0


@dataclass
class SchedulerProcess:
    node: str
    process: subprocess.Popen[str]
    log: Path  # its stderr: JSON log lines

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def leading_since(self) -> datetime | None:
        """When this scheduler last logged that it leads, if it did."""
        found = None
        for line in self.log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if record.get("msg") == "leading the scheduler" and record.get("node") == self.node:
                found = datetime.fromisoformat(record["ts"])
        return found


def start_scheduler(data: Path, process_env: dict[str, str], logs: Path) -> SchedulerProcess:
    log = logs / f"scheduler-{uuid.uuid4().hex[:8]}.log"
    command = [sys.executable, "-m", "chronolog", "scheduler", "--data-dir", str(data)]
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            command, env=process_env, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    assert process.stdout is not None
    first = process.stdout.readline()  # "Scheduler <node-id> running on <data dir>"
    if not first.startswith("Scheduler "):
        process.kill()
        process.wait()
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"chronolog scheduler did not start ({first!r}); its log ends:\n{tail}")
    return SchedulerProcess(first.split()[1], process, log)


def health(url: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{url}/api/health", timeout=HEALTH_TIMEOUT)
    except httpx.TransportError:
        return None
    if response.status_code not in (200, 503):  # 503 names what is down, in the same body
        return None
    body: dict[str, Any] = response.json()
    return body


def leader_lease(store: LeaseStore) -> Lease | None:
    """The leader lease as ``/api/health`` reads it (an expired one is not reported)."""
    return store.inspect([SCHEDULER_LEADER_KEY]).get(SCHEDULER_LEADER_KEY)


def holder(store: LeaseStore) -> str | None:
    lease = leader_lease(store)
    return lease.owner if lease is not None else None


def held_by(store: LeaseStore, nodes: set[str]) -> bool:
    return holder(store) in nodes


@contextmanager
def api_server(data: Path, process_env: dict[str, str], logs: Path) -> Iterator[str]:
    """``chronolog up`` without a scheduler or workers: the API and the projector."""
    port = free_port()
    command = [sys.executable, "-m", "chronolog", "up", "--api-port", str(port)]
    command += ["--data-dir", str(data), "--workers", "0", "--no-scheduler"]
    with (logs / "up.log").open("ab") as output:
        process = subprocess.Popen(
            command, env=process_env, cwd=REPO, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: process.poll() is None and health(url) is not None, 60, 0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


@dataclass
class Round:
    takeover_s: float
    expired_s: float
    lease_left_s: float
    leading_log_s: float | None
    health_request_s: float


def kill_leader(
    schedulers: list[SchedulerProcess], store: LeaseStore, url: str, poll: float, limit: float
) -> tuple[Round, SchedulerProcess]:
    """SIGKILL the leader, time the standby's takeover; return the round and the victim."""
    lease = leader_lease(store)
    if lease is None:
        raise SystemExit("no scheduler leads")
    victim = next(s for s in schedulers if s.node == lease.owner)
    standby = next(s for s in schedulers if s is not victim)
    killed_at = datetime.now(UTC)
    began = time.perf_counter()
    lease_left = lease.expires_at - time.time()
    victim.process.send_signal(signal.SIGKILL)
    expired: float | None = None
    while (now := holder(store)) != standby.node:
        elapsed = time.perf_counter() - began
        if expired is None and now != victim.node:
            expired = elapsed
        if elapsed > limit:
            raise SystemExit(f"no takeover by {standby.node} within {limit:.0f} s")
        time.sleep(poll)
    took = time.perf_counter() - began
    asked = time.perf_counter()
    reported = health(url)
    health_request = time.perf_counter() - asked
    if reported is None or reported["scheduler"]["leader"] != standby.node:
        raise SystemExit(f"/api/health does not name {standby.node} as the leader: {reported}")
    wait(lambda: standby.leading_since() is not None, 10)  # it logs just after acquiring
    leading = standby.leading_since()
    leading_log = None if leading is None else (leading - killed_at).total_seconds()
    victim.stop()
    done = Round(
        took, took if expired is None else expired, lease_left, leading_log, health_request
    )
    return done, victim


def takeover(args: argparse.Namespace, backend: dict[str, str]) -> dict[str, Any]:
    ttl: float = args.leader_ttl
    rng = random.Random(args.seed)
    extra = {**backend, "CHRONOLOG_LEADER_TTL": f"{ttl:g}", "CHRONOLOG_LOG_FORMAT": "json"}
    process_env = env(extra)
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        data, logs = Path(scratch) / "data", args.logs or Path(scratch)
        logs.mkdir(parents=True, exist_ok=True)
        url = stack.enter_context(api_server(data, process_env, logs))
        store = open_lease_store(load_settings(backend, data_dir=data))
        stack.callback(store.close)
        schedulers = [start_scheduler(data, process_env, logs) for _ in range(2)]

        def stop_all() -> None:
            for scheduler in schedulers:
                scheduler.stop()

        stack.callback(stop_all)
        for _ in range(args.rounds):
            nodes = {s.node for s in schedulers}
            wait(functools.partial(held_by, store, nodes), 4 * ttl + 30, args.poll)
            time.sleep(1.0 + rng.uniform(0, ttl / 3))  # the new standby is in its loop by now
            done, victim = kill_leader(schedulers, store, url, args.poll, 4 * ttl + 30)
            rounds.append(done)
            schedulers.remove(victim)
            schedulers.append(start_scheduler(data, process_env, logs))
            print(
                f"round {len(rounds)}: takeover {done.takeover_s:.3f} s after the kill "
                f"(lease had {done.lease_left_s:.3f} s left)",
                flush=True,
            )
    return summary(rounds, ttl, args.poll)


def summary(rounds: list[Round], ttl: float, poll: float) -> dict[str, Any]:
    takeovers = [r.takeover_s for r in rounds]
    logged = [r.leading_log_s for r in rounds if r.leading_log_s is not None]
    return {
        "rounds": len(rounds),
        "leader_ttl_s": ttl,
        "leader_ttl_note": "CHRONOLOG_LEADER_TTL, 5 s by default",
        "poll_interval_s": poll,
        "kill_to_takeover_s": spread(takeovers),
        "kill_to_lease_expired_s": spread([r.expired_s for r in rounds]),
        "kill_to_leading_log_s": spread(logged),
        "lease_left_at_kill_s": spread([r.lease_left_s for r in rounds]),
        "health_request_s": spread([r.health_request_s for r in rounds]),
        "within_ttl": sum(1 for value in takeovers if value <= ttl),
        "samples_takeover_s": [round(value, 3) for value in takeovers],
        "target": {
            "metric": "kill_to_takeover_s.max",
            "goal": f"<= {ttl:g} (the leader lease TTL)",
            "value": max(takeovers),
            "met": max(takeovers) <= ttl,
        },
    }


def compare(results: dict[Backend, dict[str, Any]]) -> dict[str, Any]:
    names = ("kill_to_takeover_s", "kill_to_leading_log_s", "health_request_s")
    return {
        "leader_ttl_s": results["embedded"]["leader_ttl_s"],
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": {
            f"{name}.{stat}": {
                backend: (result[name] or {}).get(stat) for backend, result in results.items()
            }
            for name in names
            for stat in ("median", "max")
        },
        "targets": {backend: result["target"] for backend, result in results.items()},
        "results": results,
    }


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--leader-ttl", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument("--poll", type=float, default=0.01, help="lease poll interval, s")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--backend", choices=["embedded", "production", "both"], default="embedded")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON files go")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs here")
    args = parser.parse_args()
    results: dict[Backend, dict[str, Any]] = {}
    for backend in selected(args.backend):
        print(f"--- {backend}", flush=True)
        with backends(backend) as backend_env:
            stack = describe(backend_env)
            result = takeover(args, backend_env)
        result["stack"] = stack
        result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
        print(json.dumps({k: v for k, v in result.items() if k != "stack"}, indent=2))
        write(args.results / f"takeover-{backend}.json", result)
        results[backend] = result
    if len(results) == 2:
        write(args.results / "takeover-compare.json", compare(results))


if __name__ == "__main__":
    main()
