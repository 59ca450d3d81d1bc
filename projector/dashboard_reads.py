"""Every read the dashboard makes: plain values out, each bounded by what a page shows.

The dashboard's one read module (the API and the scheduler have theirs). Queries sort
and filter on indexed columns only and page by keys, so a page stays fast over a
million runs (bench/bench_dashboard.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from projector.tables import JobRecord, RunRecord, WorkerRecord


@dataclass(frozen=True, slots=True)
class OverviewCounts:
    jobs: int
    running: int
    queued: int
    failed_last_24h: int  # runs that failed for good, finished in the last 24 hours
    dead_letters: int
    workers_alive: int


def overview_counts(session: Session, now: datetime) -> OverviewCounts:
    def count(*where: object) -> int:
        query = select(func.count()).select_from(RunRecord).where(*where)  # type: ignore[arg-type]
        return session.scalar(query) or 0

    alive = select(func.count()).select_from(WorkerRecord).where(WorkerRecord.status == "active")
    return OverviewCounts(
        jobs=session.scalar(select(func.count()).select_from(JobRecord)) or 0,
        running=count(RunRecord.status == "running"),
        queued=count(RunRecord.status == "queued"),
        failed_last_24h=count(
            RunRecord.status == "failed", RunRecord.finished_at >= now - timedelta(hours=24)
        ),
        dead_letters=count(RunRecord.dead_lettered.is_(True)),
        workers_alive=session.scalar(alive) or 0,
    )
