"""The ``EventLog`` port: an append-only, partitioned, keyed log with Kafka semantics.

Keys map to partitions with a stable hash (``events.partitioning``); offsets are dense
per partition, starting at 0. Adapters: ``eventlog.sqlite`` (embedded) and, later,
Kafka. Every adapter passes the same contract suite (``tests/integration``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from events.partitioning import partition_for


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where an appended record landed."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class LogRecord:
    partition: int
    offset: int
    key: str
    value: bytes
    timestamp: datetime  # append time, UTC


@dataclass(frozen=True, slots=True)
class Watermarks:
    low: int  # first offset still in the log
    high: int  # the offset the next append will get


OnAssign = Callable[[Sequence[int]], Mapping[int, int]]
"""Called with newly assigned partitions; returns the offset to start each one from."""

OnRevoke = Callable[[Sequence[int]], None]


def start_offset(starts: Mapping[int, int], partition: int) -> int:
    """Where ``on_assign`` says ``partition`` starts (0 if it does not say)."""
    offset = starts.get(partition, 0)
    if offset < 0:
        raise ValueError(f"on_assign returned negative offset {offset} for partition {partition}")
    return offset


class LogConsumer(ABC):
    """Reads the partitions assigned to it, from positions its owner chooses.

    The owner (a projector) keeps its checkpoints itself; ``on_assign`` asks it where
    to start, so a restart resumes from the owner's checkpoint, never from the log's.
    """

    @abstractmethod
    def subscribe(self, on_assign: OnAssign, on_revoke: OnRevoke | None = None) -> None:
        """Join the consumer group; assignment and ``on_assign`` happen on a later poll."""

    @abstractmethod
    def poll(self, max_records: int, timeout: float) -> list[LogRecord]:
        """Up to ``max_records`` records in offset order per partition; waits ``timeout`` s."""

    @abstractmethod
    def assignment(self) -> list[int]:
        """Partitions this consumer currently owns."""

    @abstractmethod
    def position(self, partition: int) -> int:
        """The offset the next record returned from ``partition`` will have."""

    @abstractmethod
    def seek(self, partition: int, offset: int) -> None:
        """Continue ``partition`` from ``offset``."""

    @abstractmethod
    def close(self) -> None:
        """Leave the group and release resources."""


class EventLog(ABC):
    """Append keyed records; read them back by partition and offset."""

    @property
    @abstractmethod
    def partitions(self) -> int:
        """How many partitions the log has."""

    def partition_for(self, key: str) -> int:
        return partition_for(key, self.partitions)

    def partitions_of(self, records: Sequence[tuple[str, bytes]]) -> list[int]:
        """The partition of each ``(key, value)`` record, checking the record types."""
        partitions = []
        for key, value in records:
            if not isinstance(key, str) or not isinstance(value, bytes):
                raise TypeError(f"records must be (str, bytes), got ({type(key)}, {type(value)})")
            partitions.append(self.partition_for(key))
        return partitions

    def check_partition(self, partition: int) -> None:
        if not 0 <= partition < self.partitions:
            raise ValueError(
                f"partition {partition} out of range 0..{self.partitions - 1} of {self!r}"
            )

    @abstractmethod
    def append(self, records: Sequence[tuple[str, bytes]]) -> list[Position]:
        """Append ``(key, value)`` records; return where each landed, in input order.

        Returns only once every record is durable. Records with the same key keep
        their input order. Raises ``EventLogError``: no positions are returned, but an
        adapter without cross-partition atomicity (Kafka) may still have appended some
        of the records, so a retry must be harmless (event ids, derived run ids).
        """

    @abstractmethod
    def read(self, partition: int, offset: int, limit: int = 1000) -> list[LogRecord]:
        """Records of ``partition`` from ``offset`` on, at most ``limit`` of them."""

    @abstractmethod
    def watermarks(self, partition: int) -> Watermarks:
        """The low and high offsets of ``partition``."""

    def all_watermarks(self) -> dict[int, Watermarks]:
        """Every partition's watermarks; adapters with a round trip per look-up batch them."""
        return {partition: self.watermarks(partition) for partition in range(self.partitions)}

    @abstractmethod
    def consumer(self, group: str) -> LogConsumer:
        """A consumer in ``group``; partitions are split among a group's members."""

    def close(self) -> None:  # noqa: B027 - optional hook for adapters holding resources
        """Release connections held by the adapter."""
