"""Success rate and durations of a job's finished runs, and their buckets over time.

Pure: the samples come from ``projector.dashboard_reads.finished_samples`` (bounded per
job), so nothing here scans a job's whole history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from projector.dashboard_reads import RunSample

# Two days of runs or less are shown per hour, more per day.
HOURLY_UNTIL = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class RunStats:
    finished: int
    succeeded: int
    average_ms: float | None
    p95_ms: float | None

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.finished if self.finished else None


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    finished: int
    succeeded: int
    average_ms: float | None

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.finished


def summarise(samples: Sequence[RunSample]) -> RunStats:
    durations = sorted(s.duration_ms for s in samples if s.duration_ms is not None)
    return RunStats(
        finished=len(samples),
        succeeded=sum(1 for s in samples if s.status == "completed"),
        average_ms=sum(durations) / len(durations) if durations else None,
        p95_ms=percentile(durations, 0.95),
    )


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ascending values (p95 of 20 values is the 19th)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def success_label(stats: RunStats) -> str:
    """``95% (19 of 20)``, or an em dash when nothing finished."""
    rate = stats.success_rate
    if rate is None:
        return "—"
    return f"{rate:.0%} ({stats.succeeded} of {stats.finished})"


def buckets(samples: Sequence[RunSample]) -> tuple[str, list[Bucket]]:
    """The samples grouped by the hour or day they were requested in, oldest first,
    and the bucket's name (``hour`` or ``day``)."""
    if not samples:
        return "day", []
    times = [s.requested_at for s in samples]
    unit = "hour" if max(times) - min(times) <= HOURLY_UNTIL else "day"
    groups: dict[datetime, list[RunSample]] = {}
    for sample in samples:
        groups.setdefault(_floor(sample.requested_at, unit), []).append(sample)
    return unit, [_bucket(start, group) for start, group in sorted(groups.items())]


def _floor(moment: datetime, unit: str) -> datetime:
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if unit == "hour" else hour.replace(hour=0)


def _bucket(start: datetime, group: Sequence[RunSample]) -> Bucket:
    stats = summarise(group)
    return Bucket(start, stats.finished, stats.succeeded, stats.average_ms)
