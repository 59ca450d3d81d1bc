"""The audit's reads (``GET /api/audit``) over a large event index, SQLite or PostgreSQL.

From the repository root:

    .venv/bin/python -m bench.bench_audit [--events 1000000] [--audited 0.05]
    .venv/bin/python -m bench.bench_audit --database postgresql+psycopg://…/empty_db
    .venv/bin/python -m bench.bench_audit --writes [--events 100000]

Fills an empty read model's ``event_index`` straight (no log, no projector: this
measures reads), ``--audited`` of the events made for an API caller (with a role) and
the rest by the scheduler and workers, spread over 8 partitions and 1,000 jobs (10 of
them deleted: their names come from their events); then
times each kind of audit page (p50 of ``--repeat``) with the database's plan, once with
the partial indexes of migration 0006 and once without them (dropped), and writes
``bench/results/audit-<backend>.json``.

``--writes`` measures what the audit costs the projector instead: bench_projector's
history replayed from a SQLite log into fresh SQLite read models, with no event made
for a caller and with every one of them made for one (the partial indexes' worst case),
two rounds alternating; writes ``bench/results/audit-writes.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from bench.bench_projector import history
from chronolog.settings import Settings
from chronolog.wiring import open_event_log, open_read_model
from events.codec import EventCodec
from events.model import JobSpec
from projector.audit_reads import AuditFilter, AuditKey, audit_page, audit_query
from projector.bulk import insert_rows
from projector.fold import Changes
from projector.job_projection import JobRow
from projector.replay import replay
from projector.rows import write_jobs
from projector.tables import EventIndexRecord, core_table

RESULTS: Final = Path(__file__).parent / "results"
T0: Final = datetime(2026, 11, 1, tzinfo=UTC)
PARTITIONS: Final = 8
JOBS: Final = 1000
ACTORS: Final = [f"user-{i:02d}" for i in range(20)]  # user-00 busiest, user-19 rarest
# What operators do, by weight (token events are rare).
OPERATOR_TYPES: Final = {
    "RunRequested": 60,
    "JobUpdated": 12,
    "JobCreated": 8,
    "RunCancelRequested": 6,
    "JobPaused": 5,
    "JobResumed": 5,
    "RunRetryRequested": 3,
    "JobDeleted": 1,
}
SYSTEM_TYPES: Final = ["RunQueued", "RunStarted", "RunSucceeded", "RunRequested"]
INDEXES: Final = (
    "ix_event_index_audit",
    "ix_event_index_audit_actor",
    "ix_event_index_audit_type",
    "ix_event_index_audit_job",
)


@dataclass(frozen=True)
class Timing:
    case: str
    p50_ms: float
    max_ms: float
    rows: int
    plan: str


def rows(start: int, count: int, audited: float, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    types, weights = list(OPERATOR_TYPES), list(OPERATOR_TYPES.values())
    for i in range(start, start + count):
        job = int(rng.paretovariate(1.2)) % JOBS
        operator = rng.random() < audited
        if operator:
            actor = ACTORS[min(int(rng.expovariate(0.35)), len(ACTORS) - 1)]
            kind = rng.choices(types, weights)[0]
        else:
            actor, kind = (
                rng.choice(["scheduler", "worker-1", "worker-2"]),
                rng.choice(SYSTEM_TYPES),
            )
        out.append(
            {
                "partition": i % PARTITIONS,
                "offset": i // PARTITIONS,
                "event_id": f"e-{i}",
                "type": kind,
                "job_id": f"job-{job:04d}",
                "run_id": f"run-{i}" if kind.startswith("Run") else None,
                "occurred_at": T0 + timedelta(milliseconds=100 * i),
                "actor": actor,
                "payload": _payload(kind, job),
                "actor_role": "operator" if operator else None,
                "request_id": f"req-{i}" if operator else None,
            }
        )
    return out


def _payload(kind: str, job: int) -> dict[str, Any]:
    if kind in ("JobCreated", "JobUpdated"):
        return {"spec": {"name": f"job-{job}", "type": "shell", "command": "true"}}
    return {"reason": None}


def fill(engine: Engine, events: int, audited: float) -> None:
    rng = random.Random(7)
    started = time.perf_counter()
    for start in range(0, events, 50_000):
        with Session(engine) as session, session.begin():
            chunk = rows(start, min(50_000, events - start), audited, rng)
            insert_rows(session, core_table(EventIndexRecord), chunk)
    # Token events, rare: one a day.
    with Session(engine) as session, session.begin():
        tokens = [
            {
                "partition": 0,
                "offset": events + n,
                "event_id": f"t-{n}",
                "type": "TokenRevoked",
                "occurred_at": T0 + timedelta(days=n % 5, seconds=n),
                "actor": "admin",
                "payload": {"name": f"t{n}"},
                "actor_role": "admin",
            }
            for n in range(5)
        ]
        insert_rows(session, core_table(EventIndexRecord), tokens)
    # The jobs, but job-0002, job-0102 ...: deleted, their names come from their events.
    with Session(engine) as session, session.begin():
        jobs = [
            JobRow(f"job-{n:04d}", JobSpec(f"job-{n}", "shell", command="true"), T0, T0, 1)
            for n in range(JOBS)
            if n % 100 != 2
        ]
        write_jobs(session, Changes(jobs))
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    print(f"filled {events:,} events in {time.perf_counter() - started:.0f} s")


def plan_of(session: Session, criteria: AuditFilter) -> str:
    compiled = audit_query(criteria).compile(
        session.get_bind(), compile_kwargs={"literal_binds": True}
    )
    if session.get_bind().dialect.name == "sqlite":
        found = session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        return "; ".join(str(row[-1]) for row in found)
    found = session.execute(text(f"EXPLAIN {compiled}")).all()
    return "; ".join(str(row[0]).strip() for row in found)[:300]


def cases(session: Session) -> list[tuple[str, AuditFilter]]:
    audited = EventIndexRecord.actor_role.is_not(None)
    total = session.scalar(select(func.count()).select_from(EventIndexRecord).where(audited)) or 0
    middle = session.execute(
        select(EventIndexRecord.occurred_at, EventIndexRecord.partition, EventIndexRecord.offset)
        .where(audited)
        .order_by(EventIndexRecord.occurred_at.desc())
        .offset(total // 2)
        .limit(1)
    ).one()
    deep = AuditKey(*middle)
    hour = (deep.occurred_at - timedelta(hours=1), deep.occurred_at)
    return [
        ("newest 100", AuditFilter()),
        (f"page at the middle (cursor, {total // 2:,} deep)", AuditFilter(before=deep)),
        ("actor=user-00 (busiest)", AuditFilter(actor="user-00")),
        ("actor=user-19 (rarest)", AuditFilter(actor="user-19")),
        ("actor=nobody", AuditFilter(actor="nobody")),
        ("action=RunRequested", AuditFilter(actions=("RunRequested",))),
        ("action=TokenRevoked (5 events)", AuditFilter(actions=("TokenRevoked",))),
        (
            "action=JobDeleted,JobCreated,TokenRevoked",
            AuditFilter(actions=("JobDeleted", "JobCreated", "TokenRevoked")),
        ),
        (
            "action=JobDeleted,TokenRevoked (rare)",
            AuditFilter(actions=("JobDeleted", "TokenRevoked")),
        ),
        ("job=job-0001 (busiest)", AuditFilter(job_id="job-0001")),
        ("job=job-0002 (deleted)", AuditFilter(job_id="job-0002")),
        ("job=job-0999", AuditFilter(job_id="job-0999")),
        ("since/until: one hour, mid-history", AuditFilter(since=hour[0], until=hour[1])),
        (
            "actor=user-05 + action=JobUpdated",
            AuditFilter(actor="user-05", actions=("JobUpdated",)),
        ),
        ("limit 1000", AuditFilter(limit=1000)),
    ]


def measure(engine: Engine, repeat: int) -> list[Timing]:
    timings = []
    with Session(engine) as session:
        for name, criteria in cases(session):
            times, found = [], 0
            for _ in range(repeat):
                started = time.perf_counter()
                entries, _ = audit_page(session, criteria)
                times.append((time.perf_counter() - started) * 1000)
                found = len(entries)
            plan = plan_of(session, criteria)
            timings.append(Timing(name, statistics.median(times), max(times), found, plan))
            print(f"  {name:<48} p50 {timings[-1].p50_ms:8.2f} ms  {found:>4} rows  {plan[:110]}")
    return timings


def drop_indexes(engine: Engine) -> None:
    with engine.begin() as connection:
        for name in INDEXES:
            connection.execute(text(f"DROP INDEX {name}"))
        connection.execute(text("ANALYZE"))


def bench_writes(events: int) -> dict[str, list[float]]:
    codec = EventCodec.default()
    plain = history(events)
    variants = {
        "no event audited": plain,
        "every event audited": [
            dataclasses.replace(e, actor="alice", actor_role="operator", request_id=f"r-{i}")
            for i, e in enumerate(plain)
        ],
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="chronolog-audit-writes-") as scratch:
        logs = {}
        for n, (name, batch) in enumerate(variants.items()):
            log = open_event_log(Settings(data_dir=Path(scratch) / f"log-{n}", partitions=12))
            for start in range(0, len(batch), 5000):
                log.append([(e.key, codec.encode(e)) for e in batch[start : start + 5000]])
            logs[name] = log
        for round_ in range(2):
            for n, (name, log) in enumerate(logs.items()):
                engine = open_read_model(f"sqlite:///{scratch}/rm-{n}-{round_}.db", upgrade=True)
                started = time.perf_counter()
                applied = replay(log, engine, codec, batch_size=5000)
                rates[name].append(applied / (time.perf_counter() - started))
                print(f"  round {round_}: {name:<20} {rates[name][-1]:8,.0f} events/s")
                engine.dispose()
        for log in logs.values():
            log.close()
    return rates


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, help="default 1,000,000; --writes: 100,000")
    parser.add_argument("--audited", type=float, default=0.05, help="share made for a caller")
    parser.add_argument("--database", help="an empty read-model URL (default: a SQLite file)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--writes", action="store_true", help="the projector's cost instead")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    if args.writes:
        args.events = args.events or 100_000
        rates = bench_writes(args.events)
        written = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "events": args.events}
        (RESULTS / "audit-writes.json").write_text(
            json.dumps({**written, "events_per_s": rates}, indent=2) + "\n"
        )
        return
    args.events = args.events or 1_000_000
    with tempfile.TemporaryDirectory(prefix="chronolog-audit-") as scratch:
        url = args.database or f"sqlite:///{scratch}/readmodel.db"
        engine = open_read_model(url, upgrade=True)
        fill(engine, args.events, args.audited)
        results: dict[str, list[Timing]] = {}
        for variant in ("with", "without"):
            if variant == "without":
                drop_indexes(engine)
            print(f"{engine.dialect.name}, {variant} the audit indexes:")
            results[variant] = measure(engine, args.repeat)
        backend = engine.dialect.name
        engine.dispose()
    out = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "read_model": backend,
        "events": args.events,
        "audited": args.audited,
        "timings": {variant: [asdict(t) for t in ts] for variant, ts in results.items()},
    }
    (RESULTS / f"audit-{backend}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
