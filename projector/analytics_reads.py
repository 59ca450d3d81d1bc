"""The analytics page's reads, from the roll-up tables (``projector.rollups``).

Each series is one query over an index range of its roll-up table, so it costs the
number of buckets in the range, never the number of runs. The resolution is chosen
from the range: minutes, hours or days for the all-jobs series and gauges (at most
``MAX_SERIES_BUCKETS`` buckets), hours or days for the per-job percentiles (at most
``MAX_JOB_BUCKETS`` buckets per job). A range is widened to whole buckets: from the
start of the bucket holding ``since`` to the end of the one before ``until``.
Every series has one point per bucket, empty buckets included.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from projector.rollups import (
    BUSY,
    CAPACITY,
    DAY,
    DURATION,
    JOB_WIDTHS,
    LATENESS,
    QUEUE,
    SERIES_WIDTHS,
    bucket_start,
    percentile,
)
from projector.tables import (
    JobRecord,
    RollupGaugeLevelRecord,
    RollupGaugeRecord,
    RollupJobHistogramRecord,
    RollupJobRunsRecord,
    RollupRunsRecord,
)

MAX_SERIES_BUCKETS: Final = 1500  # a day of minutes, two months of hours
MAX_JOB_BUCKETS: Final = 48  # per job: two days of hours, else days


@dataclass(frozen=True, slots=True)
class RunCounts:
    """Runs entering each status in one bucket (all jobs); ``timed_out`` and ``lost``
    count attempts ending so (the run then retries or fails)."""

    bucket: datetime
    width_s: int
    requested: int = 0
    started: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    timed_out: int = 0
    lost: int = 0


@dataclass(frozen=True, slots=True)
class SuccessRate:
    """``completed / (completed + failed)`` in one bucket: runs that reached a verdict
    (cancelled and skipped runs are left out). None when none did."""

    bucket: datetime
    width_s: int
    completed: int
    failed: int
    rate: float | None


@dataclass(frozen=True, slots=True)
class JobPercentiles:
    """A job's durations (or lateness) over a range, from its histograms (milliseconds).
    The percentiles are within 19 % of the exact ones (see ``rollups.percentile``)."""

    job_id: str
    job_name: str | None  # None: the job has been deleted
    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    width_s: int


@dataclass(frozen=True, slots=True)
class GaugePoint:
    """A gauge at the end of a bucket, and what entered and left it during the bucket."""

    bucket: datetime
    width_s: int
    level: int
    added: int
    removed: int


@dataclass(frozen=True, slots=True)
class QueueDepth:
    queue: str
    points: tuple[GaugePoint, ...]  # level: runs queued and not yet taken by a worker


@dataclass(frozen=True, slots=True)
class Utilisation:
    """Busy slots over the capacity of active workers, at the end of a bucket."""

    bucket: datetime
    width_s: int
    busy: int
    capacity: int
    utilisation: float | None  # None without capacity


# --- resolution ----------------------------------------------------------------------


def choose_width(since: datetime, until: datetime, widths: Sequence[int], most: int) -> int:
    """The finest of ``widths`` giving at most ``most`` buckets, else the coarsest."""
    _check_range(since, until)
    for width in widths:
        if _bucket_count(since, until, width) <= most:
            return width
    return widths[-1]


def _check_range(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since, until: must be timezone-aware datetimes")
    if since >= until:
        raise ValueError(f"since: {since.isoformat()} is not before until {until.isoformat()}")


def _bucket_count(since: datetime, until: datetime, width: int) -> int:
    return math.ceil((until - bucket_start(since, width)) / timedelta(seconds=width))


def _buckets(since: datetime, until: datetime, width: int) -> list[datetime]:
    start, step = bucket_start(since, width), timedelta(seconds=width)
    return [start + i * step for i in range(_bucket_count(since, until, width))]


def _series_width(since: datetime, until: datetime, bucket: timedelta | None) -> int:
    if bucket is None:
        return choose_width(since, until, SERIES_WIDTHS, MAX_SERIES_BUCKETS)
    _check_range(since, until)
    width = int(bucket.total_seconds())
    if width not in SERIES_WIDTHS:
        raise ValueError(f"bucket: {bucket} is not one of 1 minute, 1 hour, 1 day")
    if (count := _bucket_count(since, until, width)) > MAX_SERIES_BUCKETS:
        raise ValueError(f"bucket: {count} buckets of {bucket}, more than {MAX_SERIES_BUCKETS}")
    return width


# --- runs ----------------------------------------------------------------------------


def runs_per_minute(
    session: Session, since: datetime, until: datetime, bucket: timedelta | None = None
) -> list[RunCounts]:
    """Runs per bucket by status, all jobs: per minute, or per hour or day over ranges
    too long for minutes (``bucket`` forces one)."""
    width = _series_width(since, until, bucket)
    buckets = _buckets(since, until, width)
    query = select(RollupRunsRecord).where(
        RollupRunsRecord.width_s == width,
        RollupRunsRecord.bucket >= buckets[0],
        RollupRunsRecord.bucket < until,
    )
    found = {
        r.bucket: RunCounts(
            r.bucket,
            width,
            r.requested,
            r.started,
            r.completed,
            r.failed,
            r.cancelled,
            r.skipped,
            r.timed_out,
            r.lost,
        )
        for r in session.scalars(query)
    }
    return [found.get(b) or RunCounts(b, width) for b in buckets]


def success_rate(
    session: Session, since: datetime, until: datetime, bucket: timedelta | None = None
) -> list[SuccessRate]:
    """Completed over completed + failed, per bucket (resolution as ``runs_per_minute``)."""
    return [
        SuccessRate(
            c.bucket,
            c.width_s,
            c.completed,
            c.failed,
            c.completed / (c.completed + c.failed) if c.completed + c.failed else None,
        )
        for c in runs_per_minute(session, since, until, bucket)
    ]


def duration_percentiles(
    session: Session, since: datetime, until: datetime
) -> list[JobPercentiles]:
    """Per job: p50 / p95 / mean duration of the attempts that ended in the range with a
    measured duration (succeeded, failed or timed out)."""
    return _job_percentiles(session, DURATION, since, until)


def lateness_percentiles(
    session: Session, since: datetime, until: datetime
) -> list[JobPercentiles]:
    """Per job: p50 / p95 / mean lateness (first start minus the fire time) of the
    schedule-fired runs that started in the range; a start before its fire time is 0."""
    return _job_percentiles(session, LATENESS, since, until)


def _job_percentiles(
    session: Session, metric: str, since: datetime, until: datetime
) -> list[JobPercentiles]:
    width = choose_width(since, until, JOB_WIDTHS, MAX_JOB_BUCKETS)
    start = bucket_start(since, width)
    h = RollupJobHistogramRecord
    bins: defaultdict[str, dict[int, int]] = defaultdict(dict)
    histograms = (
        select(h.job_id, h.bin, func.sum(h.n))
        .where(h.metric == metric, h.width_s == width, h.bucket >= start, h.bucket < until)
        .group_by(h.job_id, h.bin)
    )
    for job_id, index, n in session.execute(histograms):
        bins[job_id][index] = int(n)
    j = RollupJobRunsRecord
    count, total = getattr(j, f"{metric}_count"), getattr(j, f"{metric}_sum_ms")
    sums = (
        select(j.job_id, JobRecord.name, func.sum(count), func.sum(total))
        .outerjoin(JobRecord, JobRecord.id == j.job_id)
        .where(j.width_s == width, j.bucket >= start, j.bucket < until)
        .group_by(j.job_id, JobRecord.name)
        .having(func.sum(count) > 0)
    )
    found = [
        JobPercentiles(
            job_id=job_id,
            job_name=name,
            count=int(n),
            mean_ms=int(summed) / int(n),
            p50_ms=percentile(bins[job_id], 0.5) or 0.0,
            p95_ms=percentile(bins[job_id], 0.95) or 0.0,
            width_s=width,
        )
        for job_id, name, n, summed in session.execute(sums)
    ]
    return sorted(found, key=lambda p: (p.job_name or "", p.job_id))


# --- gauges --------------------------------------------------------------------------


def queue_depth(session: Session, since: datetime, until: datetime) -> list[QueueDepth]:
    """Per queue: runs waiting in it at the end of each bucket (minute, hour or day)."""
    width = choose_width(since, until, SERIES_WIDTHS, MAX_SERIES_BUCKETS)
    series = _gauge_series(session, QUEUE, since, until, width)
    return [QueueDepth(queue, points) for queue, points in sorted(series.items())]


def worker_utilisation(session: Session, since: datetime, until: datetime) -> list[Utilisation]:
    """Busy slots and active workers' capacity at the end of each bucket."""
    width = choose_width(since, until, SERIES_WIDTHS, MAX_SERIES_BUCKETS)
    busy = _gauge_series(session, BUSY, since, until, width).get("")
    capacity = _gauge_series(session, CAPACITY, since, until, width).get("")
    points = []
    for index, bucket in enumerate(_buckets(since, until, width)):
        used = busy[index].level if busy else 0
        slots = capacity[index].level if capacity else 0
        points.append(Utilisation(bucket, width, used, slots, used / slots if slots else None))
    return points


def current_queue_depths(session: Session) -> dict[str, int]:
    """Runs waiting in each queue now (as far as the projection has got)."""
    query = select(RollupGaugeLevelRecord.key, RollupGaugeLevelRecord.level).where(
        RollupGaugeLevelRecord.gauge == QUEUE
    )
    return {key: int(level) for key, level in session.execute(query)}


def _gauge_series(
    session: Session, gauge: str, since: datetime, until: datetime, width: int
) -> dict[str, tuple[GaugePoint, ...]]:
    buckets = _buckets(since, until, width)
    levels = _levels_at(session, gauge, buckets[0], width)
    g = RollupGaugeRecord
    moves: defaultdict[str, dict[datetime, tuple[int, int]]] = defaultdict(dict)
    query = select(g.key, g.bucket, g.added, g.removed).where(
        g.gauge == gauge, g.width_s == width, g.bucket >= buckets[0], g.bucket < until
    )
    for key, bucket, added, removed in session.execute(query):
        moves[key][bucket] = (added, removed)
    series = {}
    for key in set(levels) | set(moves):
        level, points = levels.get(key, 0), []
        for bucket in buckets:
            added, removed = moves[key].get(bucket, (0, 0))
            level += added - removed
            points.append(GaugePoint(bucket, width, level, added, removed))
        series[key] = tuple(points)
    return series


def _levels_at(session: Session, gauge: str, start: datetime, width: int) -> dict[str, int]:
    """Each key's level at ``start`` (a bucket boundary of ``width``): the sum of its
    movements before it, read as whole days, then ``width`` buckets from that day on."""
    day = bucket_start(start, DAY)
    g = RollupGaugeRecord
    query = (
        select(g.key, func.sum(g.added - g.removed))
        .where(
            g.gauge == gauge,
            or_(
                and_(g.width_s == DAY, g.bucket < day),
                and_(g.width_s == width, g.bucket >= day, g.bucket < start),
            ),
        )
        .group_by(g.key)
    )
    return {key: int(level) for key, level in session.execute(query)}
