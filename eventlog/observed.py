"""An ``EventLog`` that times its appends for the metrics, around any adapter."""

from __future__ import annotations

import time
from collections.abc import Sequence

from eventlog.port import EventLog, LogConsumer, LogRecord, Position, Watermarks
from metrics.hooks import Metrics


class ObservedEventLog(EventLog):
    """Delegates everything to ``inner``; each successful append is observed."""

    def __init__(self, inner: EventLog, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"ObservedEventLog({self.inner!r})"

    @property
    def partitions(self) -> int:
        return self.inner.partitions

    def append(self, records: Sequence[tuple[str, bytes]]) -> list[Position]:
        started = time.perf_counter()
        positions = self.inner.append(records)
        self._metrics.appended(time.perf_counter() - started, len(records))
        return positions

    def read(self, partition: int, offset: int, limit: int = 1000) -> list[LogRecord]:
        return self.inner.read(partition, offset, limit)

    def watermarks(self, partition: int) -> Watermarks:
        return self.inner.watermarks(partition)

    def all_watermarks(self) -> dict[int, Watermarks]:
        return self.inner.all_watermarks()

    def consumer(self, group: str) -> LogConsumer:
        return self.inner.consumer(group)

    def close(self) -> None:
        self.inner.close()


def observed(log: EventLog, metrics: Metrics) -> EventLog:
    """``log`` itself when metrics are off (nothing to time), else wrapped."""
    return ObservedEventLog(log, metrics) if metrics.enabled else log
