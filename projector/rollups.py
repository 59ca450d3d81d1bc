"""Roll-ups for analytics: what a batch adds to the time-bucketed counters. Pure, no I/O.

Each applied run or worker event is seen as a change of one row (before -> after) at the
event's ``occurred_at``. From those changes ``rollup_deltas`` computes increments only:
counts of runs entering a status, duration and lateness histograms, and gauges (queue
depth, busy slots, worker capacity) kept as what entered and what left per bucket. An
increment does not depend on the order in which partitions are applied, so a replay
(partition after partition) builds the same tables as live projection (interleaved),
and two projectors sharing a queue's counters never overwrite each other.

A gauge's level at a time is the sum of its deltas before it (``analytics_reads``);
the maximum within a bucket is not kept, because it depends on the interleaving.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

from projector.run_projection import RunRow
from projector.worker_projection import WorkerRow

MINUTE: Final = 60
HOUR: Final = 3600
DAY: Final = 86400
SERIES_WIDTHS: Final = (MINUTE, HOUR, DAY)  # all-jobs counts and gauges
JOB_WIDTHS: Final = (HOUR, DAY)  # per job: counts and histograms

STATUS_COUNTS: Final = (
    "requested",
    "started",
    "completed",
    "failed",
    "cancelled",
    "skipped",
    "timed_out",
    "lost",
)
JOB_MEASURES: Final = ("duration_count", "duration_sum_ms", "lateness_count", "lateness_sum_ms")

DURATION: Final = "duration"
LATENESS: Final = "lateness"
QUEUE: Final = "queue"
BUSY: Final = "busy"
CAPACITY: Final = "capacity"

# Histogram bins: bin 0 holds [0, 1 ms), bin k >= 1 holds [2^((k-1)/4), 2^(k/4)) ms, four
# bins per doubling; the last bin (about 2^33.75 ms, 160 days) also takes anything longer.
BINS_PER_DOUBLING: Final = 4
LAST_BIN: Final = 136
# Values are capped (about 35 years) so that sums stay far inside 64 bits on both
# backends (SQLite would turn an overflowing sum into a float, PostgreSQL refuse it).
MAX_MS: Final = 2**40
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_SECOND: Final = timedelta(seconds=1)
_WIDTHS: Final = tuple(sorted(set(SERIES_WIDTHS) | set(JOB_WIDTHS)))

SeriesKey: TypeAlias = tuple[int, datetime]  # width, bucket
JobKey: TypeAlias = tuple[int, datetime, str]  # width, bucket, job id
HistogramKey: TypeAlias = tuple[str, int, datetime, str, int]  # metric, width, bucket, job, bin
GaugeKey: TypeAlias = tuple[str, int, datetime, str]  # gauge, width, bucket, key


@dataclass(frozen=True, slots=True)
class RunChange:
    """A run event as applied: the run before it (None: just requested) and after it."""

    before: RunRow | None
    after: RunRow
    at: datetime


@dataclass(frozen=True, slots=True)
class WorkerChange:
    before: WorkerRow | None
    after: WorkerRow
    at: datetime


Change: TypeAlias = RunChange | WorkerChange


def _counter() -> defaultdict[str, int]:
    return defaultdict(int)


@dataclass
class RollupDeltas:
    """Increments for each roll-up table, keyed by primary key, column -> amount.

    A key is present when an event touched it, even if its increments sum to zero, so
    the rows that exist do not depend on how events were cut into batches.
    """

    runs: defaultdict[SeriesKey, defaultdict[str, int]] = field(
        default_factory=lambda: defaultdict(_counter)
    )
    jobs: defaultdict[JobKey, defaultdict[str, int]] = field(
        default_factory=lambda: defaultdict(_counter)
    )
    histograms: defaultdict[HistogramKey, int] = field(default_factory=lambda: defaultdict(int))
    gauges: defaultdict[GaugeKey, defaultdict[str, int]] = field(
        default_factory=lambda: defaultdict(_counter)
    )
    levels: defaultdict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def is_empty(self) -> bool:
        return not (self.runs or self.jobs or self.histograms or self.gauges or self.levels)


def rollup_deltas(changes: Iterable[Change]) -> RollupDeltas:
    """What ``changes`` (a batch's applied run and worker events) add to the roll-ups."""
    deltas = RollupDeltas()
    for change in changes:
        if isinstance(change, RunChange):
            _add_run(deltas, change)
        elif capacity := _capacity(change.after) - _capacity(change.before):
            _add_gauge(deltas, CAPACITY, "", _bucket_starts(change.at), capacity)
    return deltas


def _bucket_starts(at: datetime) -> dict[int, datetime]:
    """Width -> ``bucket_start(at, width)`` for every width, from one subtraction: a run
    event adds to up to eight buckets."""
    seconds = (at - _EPOCH) // _SECOND
    return {width: _moment(seconds - seconds % width) for width in _WIDTHS}


@functools.lru_cache(maxsize=4096)
def _moment(seconds: int) -> datetime:
    # Bucket starts repeat (a minute's events share one): one datetime made per bucket.
    return _EPOCH + timedelta(seconds=seconds)


def bucket_start(at: datetime, width: int) -> datetime:
    """The start of the ``width``-second bucket holding ``at`` (UTC, aligned to the epoch)."""
    seconds = (at - _EPOCH) // timedelta(seconds=1)
    return _EPOCH + timedelta(seconds=seconds - seconds % width)


def histogram_bin(value_ms: int) -> int:
    """The bin of a non-negative millisecond value (negative ones count as 0)."""
    if value_ms < 1:
        return 0
    return min(LAST_BIN, 1 + math.floor(BINS_PER_DOUBLING * math.log2(value_ms)))


def bin_bounds(index: int) -> tuple[float, float]:
    """The ``[low, high)`` milliseconds of a bin."""
    if index == 0:
        return 0.0, 1.0
    return 2 ** ((index - 1) / BINS_PER_DOUBLING), 2 ** (index / BINS_PER_DOUBLING)


def percentile(bins: Mapping[int, int], q: float) -> float | None:
    """The ``q``-quantile (0..1) of the values counted in ``bins`` (bin -> count).

    The rank ``q * count`` is located in its bin and interpolated linearly inside it.
    Error bound: the estimate lies in the same bin as the true quantile, so it is within
    a factor 2^(1/4) (about 19 %) of it, or within 1 ms below 1 ms. None when empty.
    """
    total = sum(bins.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(bins):
        count = bins[index]
        if count and seen + count >= rank:
            low, high = bin_bounds(index)
            return low + (high - low) * max(0.0, rank - seen) / count
        seen += count
    return bin_bounds(max(bins))[1]  # q > 1: the top of the highest bin


# --- runs ----------------------------------------------------------------------------


def status_counts(before: RunRow | None, after: RunRow) -> list[str]:
    """The counters a run change adds one to: statuses it entered, attempt endings."""
    counts = [] if before is not None else ["requested"]
    old = before.status if before is not None else None
    if after.status != old:
        entered = "started" if after.status == "running" else after.status
        if entered in STATUS_COUNTS:
            counts.append(entered)
    if old == "running" and after.status != "running" and after.outcome in ("timed_out", "lost"):
        counts.append(after.outcome)
    return counts


def duration_ms(before: RunRow | None, after: RunRow) -> int | None:
    """The duration of an attempt this change ended, when the worker measured one
    (within 0 .. ``MAX_MS``)."""
    if before is None or before.status != "running" or after.status == "running":
        return None
    return None if after.duration_ms is None else min(max(0, after.duration_ms), MAX_MS)


def lateness_ms(before: RunRow | None, after: RunRow) -> int | None:
    """Start minus fire time, at a schedule-fired run's first start (negative: 0)."""
    if before is None or before.started_at is not None or after.started_at is None:
        return None
    if after.trigger != "schedule" or after.scheduled_for is None:
        return None
    return min(max(0, (after.started_at - after.scheduled_for) // _MS), MAX_MS)


def _add_run(deltas: RollupDeltas, change: RunChange) -> None:
    before, after, at = change.before, change.after, change.at
    counts = status_counts(before, after)
    measures = {
        DURATION: duration_ms(before, after),
        LATENESS: lateness_ms(before, after),
    }
    starts = _bucket_starts(at)
    if counts or any(v is not None for v in measures.values()):
        _add_counts(deltas, after.job_id, starts, counts, measures)
    old_queue = before.queue if before is not None and before.status == "queued" else None
    new_queue = after.queue if after.status == "queued" else None
    if old_queue != new_queue:
        if old_queue is not None:
            _add_gauge(deltas, QUEUE, old_queue, starts, -1)
        if new_queue is not None:
            _add_gauge(deltas, QUEUE, new_queue, starts, 1)
    busy = _running(after) - _running(before)
    if busy:
        _add_gauge(deltas, BUSY, "", starts, busy)


def _add_counts(
    deltas: RollupDeltas,
    job_id: str,
    starts: Mapping[int, datetime],
    counts: list[str],
    measures: Mapping[str, int | None],
) -> None:
    for width in SERIES_WIDTHS:
        row = deltas.runs[(width, starts[width])]
        for name in counts:
            row[name] += 1
    for width in JOB_WIDTHS:
        bucket = starts[width]
        row = deltas.jobs[(width, bucket, job_id)]
        for name in counts:
            row[name] += 1
        for metric, value in measures.items():
            if value is None:
                continue
            row[f"{metric}_count"] += 1
            row[f"{metric}_sum_ms"] += value
            deltas.histograms[(metric, width, bucket, job_id, histogram_bin(value))] += 1


def _running(run: RunRow | None) -> int:
    return int(run is not None and run.status == "running")


# --- gauges --------------------------------------------------------------------------


def _capacity(worker: WorkerRow | None) -> int:
    return worker.concurrency if worker is not None and worker.status == "active" else 0


def _add_gauge(
    deltas: RollupDeltas, gauge: str, key: str, starts: Mapping[int, datetime], delta: int
) -> None:
    for width in SERIES_WIDTHS:
        row = deltas.gauges[(gauge, width, starts[width], key)]
        row["added"] += max(0, delta)
        row["removed"] += max(0, -delta)
    deltas.levels[(gauge, key)] += delta
