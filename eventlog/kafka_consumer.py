"""The reading side of the Kafka event log: error mapping, partition reads and probes,
and the consumer-group ``LogConsumer``.

Where a partition ends is learnt from fetch responses, never from ``ListOffsets``
(``get_watermark_offsets(cached=False)``): some Kafka-compatible brokers (the local test
broker among them) answer ``ListOffsets`` with a wrong end, while the high watermark in
a fetch response, and the ``enable.partition.eof`` event derived from it, are right on
every broker. So each read and each probe uses a short-lived consumer of its own: its
cached watermarks can then only come from its own, fresh fetch responses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from eventlog.port import LogConsumer, LogRecord, OnAssign, OnRevoke, Watermarks, start_offset
from events.errors import EventLogError, EventLogUnavailable

logger = logging.getLogger(__name__)

ClientConfig = dict[str, Any]
Probe = Callable[[int], Watermarks]

WAIT_SLICE: Final = 0.05
"""Seconds a read waits for the next fetch result before looking at the watermarks."""
GAP_WARNING_INTERVAL: Final = 5.0
"""Seconds between warnings about a partition fetched again after a gap."""
DRAIN_MAX: Final = 10_000
"""Most messages taken from librdkafka's queue in one ``consume`` call."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EOF: Final = KafkaError._PARTITION_EOF
_OUT_OF_RANGE: Final = frozenset({KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE})
_UNAVAILABLE: Final = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError._RESOLVE,
        KafkaError._WAIT_COORD,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)
_PERMANENT: Final = frozenset(
    {
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
    }
)

READER_DEFAULTS: Final[Mapping[str, Any]] = {
    # Never joins a group (assign only); librdkafka still insists on a group id.
    "group.id": "chronolog-reader",
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "error",
    "allow.auto.create.topics": False,
    # Shorter waits make some brokers return empty fetches forever on partitions of
    # many small batches (measured on the local test broker).
    "fetch.wait.max.ms": 100,
}
_PROBE_SETTINGS: Final[Mapping[str, Any]] = {
    # A probe needs one record per partition: fetch and queue as little as the broker allows.
    "max.partition.fetch.bytes": 1,
    "queued.min.messages": 1,
}
GROUP_DEFAULTS: Final[Mapping[str, Any]] = {
    **READER_DEFAULTS,
    # Eager rebalancing (an eager assignor on the classic protocol, librdkafka's default):
    # on_assign always gets the consumer's whole new assignment.
    "partition.assignment.strategy": "range",
}


def log_error(error: KafkaError | None, what: str) -> EventLogError:
    """``EventLogUnavailable`` for errors that heal by retrying, else ``EventLogError``."""
    if error is None:
        return EventLogError(f"{what}: unknown Kafka error")
    message = f"{what}: {error.str()} ({error.name()})"
    if not error.fatal() and error.code() in _UNAVAILABLE:
        return EventLogUnavailable(message)
    return EventLogError(message)


def kafka_error_of(exc: KafkaException) -> KafkaError | None:
    return exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None


def error_code(exc: KafkaException) -> int | None:
    error = kafka_error_of(exc)
    return None if error is None else error.code()


def exception_error(exc: KafkaException, what: str) -> EventLogError:
    """The ``events.errors`` class for a ``KafkaException`` raised by a client call."""
    error = kafka_error_of(exc)
    if error is None:
        return EventLogError(f"{what}: {exc}")
    return log_error(error, what)


def to_record(message: Message) -> LogRecord:
    """A ``LogRecord`` from a fetched message; its timestamp is the broker's."""
    partition, offset = message.partition(), message.offset()
    assert partition is not None and offset is not None  # set on every fetched message
    kind, millis = message.timestamp()
    where = f"record {offset} of partition {partition} of topic {message.topic()!r}"
    if kind == TIMESTAMP_NOT_AVAILABLE:
        raise EventLogError(f"{where} has no timestamp")
    try:
        key = (message.key() or b"").decode("utf-8")
    except UnicodeDecodeError as e:
        raise EventLogError(f"{where} has a key that is not UTF-8") from e
    value = message.value() or b""
    return LogRecord(partition, offset, key, value, _EPOCH + timedelta(milliseconds=millis))


def open_consumer(config: ClientConfig, what: str) -> Consumer:
    try:
        return Consumer(config)
    except KafkaException as e:
        raise exception_error(e, f"creating a consumer for {what}") from e


def read_partition(
    config: ClientConfig, topic: str, partition: int, offset: int, *, limit: int, timeout: float
) -> list[LogRecord]:
    """Records ``offset`` .. ``offset + limit - 1`` of ``partition``; stops at its end."""
    what = f"read of partition {partition} of topic {topic!r} from offset {offset}"
    consumer = open_consumer(config, what)

    def log_start() -> int:
        return probe_watermarks(config, topic, [partition], timeout)[partition].low

    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        read = _PartitionRead(consumer, TopicPartition(topic, partition, offset), what, log_start)
        return read.run(limit, timeout)
    except KafkaException as e:
        raise exception_error(e, what) from e
    finally:
        consumer.close()


def probe_watermarks(
    config: ClientConfig, topic: str, partitions: Sequence[int], timeout: float
) -> dict[int, Watermarks]:
    """Low and high offsets of ``partitions``, as the first fetch of each reports them.

    ``low`` is the offset of the first record (the end, if there is none); ``high`` the
    fetch response's high watermark, or the end-of-partition event's offset.
    """
    what = f"watermarks of partitions {list(partitions)} of topic {topic!r}"
    consumer = open_consumer({**config, **_PROBE_SETTINGS}, what)
    try:
        # From offset 0, not OFFSET_BEGINNING: that costs an offset look-up (~0.5 s on
        # Tansu) and Chronolog's log keeps every record; a deleted start is handled.
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        firsts = _first_events(consumer, topic, len(partitions), timeout)
        return {p: _watermarks(consumer, topic, p, firsts[p]) for p in partitions}
    except KafkaException as e:
        raise exception_error(e, what) from e
    finally:
        consumer.close()


def _first_events(
    consumer: Consumer, topic: str, count: int, timeout: float
) -> dict[int, tuple[int, bool]]:
    """Per partition, the offset of its first message or EOF event, and whether it was EOF."""
    firsts: dict[int, tuple[int, bool]] = {}
    deadline = time.monotonic() + timeout
    while len(firsts) < count:
        for message in consumer.consume(DRAIN_MAX, 0) or consumer.consume(1, WAIT_SLICE):
            error, partition, offset = message.error(), message.partition(), message.offset()
            if partition is None or offset is None or partition in firsts:
                continue
            if error is not None and error.code() in _OUT_OF_RANGE:  # the start was deleted
                consumer.seek(TopicPartition(topic, partition, OFFSET_BEGINNING))
            elif error is not None and error.code() != _EOF:
                raise log_error(error, f"watermarks of partition {partition} of topic {topic!r}")
            else:
                firsts[partition] = (offset, error is not None)
        if time.monotonic() > deadline:
            raise EventLogUnavailable(f"watermarks of topic {topic!r}: no fetch within {timeout} s")
    return firsts


def _watermarks(
    consumer: Consumer, topic: str, partition: int, first: tuple[int, bool]
) -> Watermarks:
    offset, at_end = first
    if at_end:
        return Watermarks(low=offset, high=offset)
    high = _cached_high(consumer, TopicPartition(topic, partition))
    if high <= offset:  # the fetch that brought the first record also brought its watermark
        raise EventLogError(
            f"partition {partition} of topic {topic!r}: fetch reported high watermark {high} "
            f"below its own record {offset}"
        )
    return Watermarks(low=offset, high=high)


def _cached_high(consumer: Consumer, partition: TopicPartition) -> int:
    """The high watermark of the consumer's latest fetch response (< 0 before the first)."""
    _, high = consumer.get_watermark_offsets(partition, cached=True)
    return high


class _PartitionRead:
    """One read of one partition on a consumer assigned to it for this read only."""

    def __init__(
        self,
        consumer: Consumer,
        start: TopicPartition,
        what: str,
        log_start: Callable[[], int],
    ) -> None:
        self._consumer = consumer
        self._partition = TopicPartition(start.topic, start.partition)
        self._next = start.offset
        self._what = what
        self._log_start = log_start
        self._records: list[LogRecord] = []
        self._done = False

    def run(self, limit: int, timeout: float) -> list[LogRecord]:
        deadline = time.monotonic() + timeout
        while not self._done and len(self._records) < limit:
            room = min(limit - len(self._records), DRAIN_MAX)
            messages = self._consumer.consume(room, 0) or self._consumer.consume(1, WAIT_SLICE)
            for message in messages:
                self._take(message)
            if self._at_end():
                break
            if time.monotonic() > deadline:
                raise EventLogUnavailable(f"{self._what}: no fetch answered within {timeout} s")
        return self._records[:limit]

    def _take(self, message: Message) -> None:
        if self._done:
            return
        error = message.error()
        if error is None:
            record = to_record(message)
            self._records.append(record)
            self._next = record.offset + 1
        elif error.code() == _EOF:
            self._done = True
        elif error.code() in _OUT_OF_RANGE:
            # Kafka refuses fetches past the end; reading there finds nothing, as in SQLite.
            self._check_not_deleted()
            self._done = True
        else:
            raise log_error(error, self._what)

    def _at_end(self) -> bool:
        """True once the read reached the high watermark of this consumer's latest fetch.

        That watermark comes with the records (the EOF event would need one more fetch,
        which waits ``fetch.wait.max.ms``), and some brokers answer a fetch past the end
        with no records and no error, so no EOF event ever comes.
        """
        high = _cached_high(self._consumer, self._partition)
        return high >= 0 and self._next >= high

    def _check_not_deleted(self) -> None:
        low = self._log_start()
        if self._next < low:
            raise EventLogError(
                f"{self._what}: offset {self._next} is before the log start {low}; "
                "records were deleted (retention or delete-records)"
            )


class KafkaLogConsumer(LogConsumer):
    """A member of a Kafka consumer group; its owner chooses every start offset.

    The broker's committed offsets are never used: ``on_assign`` asks the owner for
    its checkpoints (kept in its database) and the consumer starts there. Use it from
    one thread at a time.

    Args:
        config: librdkafka settings of the group consumer (``group.id`` included).
        topic: the log's topic.
        probe: watermarks of one partition, used when a position is out of range.
    """

    def __init__(self, config: ClientConfig, topic: str, probe: Probe) -> None:
        self._group = str(config["group.id"])
        self._topic = topic
        self._probe = probe
        self._consumer = open_consumer(config, f"group {self._group!r} on topic {topic!r}")
        self._on_assign: OnAssign | None = None
        self._on_revoke: OnRevoke | None = None
        self._pending: list[int] = []
        self._positions: dict[int, int] = {}
        self._generation = 0  # moves on every assignment and revocation
        self._gap_warned = 0.0
        self._closed = False

    def __repr__(self) -> str:
        return f"KafkaLogConsumer(topic={self._topic!r}, group={self._group!r})"

    def subscribe(self, on_assign: OnAssign, on_revoke: OnRevoke | None = None) -> None:
        """Join the group; a later ``poll`` receives the assignment and calls ``on_assign``.

        A partition ``on_assign`` returns no offset for starts at 0.
        """
        self._check_open()
        self._revoke(self._consumer)
        self._on_assign, self._on_revoke = on_assign, on_revoke
        try:
            self._consumer.subscribe(
                [self._topic],
                on_assign=self._assigned,
                on_revoke=self._revoked,
                on_lost=self._revoked,
            )
        except KafkaException as e:
            raise exception_error(e, f"subscribing group {self._group!r}") from e

    def poll(self, max_records: int, timeout: float) -> list[LogRecord]:
        """Up to ``max_records`` records; returns as soon as some arrived or after ``timeout``."""
        self._check_open()
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        if self._on_assign is None:
            raise EventLogError(f"consumer of group {self._group!r} polled before subscribe()")
        if self._pending:
            self._start(self._consumer)
        deadline = time.monotonic() + timeout
        wait = 0.0
        while True:
            records = self._drain(max_records, wait)
            wait = deadline - time.monotonic()
            if records or wait <= 0:
                return records

    def assignment(self) -> list[int]:
        return sorted(self._positions)

    def position(self, partition: int) -> int:
        return self._positions[self._check_assigned(partition)]

    def seek(self, partition: int, offset: int) -> None:
        self._check_assigned(partition)
        if offset < 0:
            raise ValueError(f"cannot seek partition {partition} to negative offset {offset}")
        previous, self._positions[partition] = self._positions[partition], offset
        try:
            self._consumer.seek(TopicPartition(self._topic, partition, offset))
        except KafkaException as e:
            if error_code(e) == KafkaError._STATE:  # not fetching yet: assign at the positions
                self._refetch()
                return
            self._positions[partition] = previous
            raise exception_error(e, self._where(partition, offset, "seek")) from e

    def close(self) -> None:
        """Leave the group, revoking the assignment (``on_revoke``); idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._consumer.close()  # runs the revoke callback
        except KafkaException as e:
            raise exception_error(e, f"closing consumer of group {self._group!r}") from e
        finally:
            self._revoke(None)

    # --- rebalance callbacks (run inside consume/close) -----------------------------

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._generation += 1
        self._pending = sorted(tp.partition for tp in partitions)
        self._start(consumer)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._revoke(consumer)

    def _start(self, consumer: Consumer) -> None:
        """Ask the owner where the pending partitions start, then fetch from there.

        If the owner fails, nothing is fetched and the next ``poll`` asks again.
        """
        assert self._on_assign is not None
        try:
            starts = self._on_assign(list(self._pending))
            positions = {p: start_offset(starts, p) for p in self._pending}
        except BaseException:
            consumer.assign([])  # keep librdkafka from starting at committed offsets
            raise
        consumer.assign([TopicPartition(self._topic, p, o) for p, o in positions.items()])
        self._positions, self._pending = positions, []
        logger.debug("group %s assigned %s of %s", self._group, positions, self._topic)

    def _revoke(self, consumer: Consumer | None) -> None:
        revoked, self._positions, self._pending = sorted(self._positions), {}, []
        if not revoked:
            return
        self._generation += 1
        if consumer is not None:
            consumer.unassign()
        if self._on_revoke is not None:
            self._on_revoke(revoked)

    # --- fetching -------------------------------------------------------------------

    def _drain(self, max_records: int, wait: float) -> list[LogRecord]:
        """``_take``, or, if it fails, nothing consumed: positions go back where they were."""
        snapshot, generation = dict(self._positions), self._generation
        try:
            return self._take(max_records, wait)
        except BaseException:
            if self._generation == generation and self._positions != snapshot:
                self._positions = snapshot
                self._refetch()
            raise

    def _take(self, max_records: int, wait: float) -> list[LogRecord]:
        """Wait up to ``wait`` s for a first event, then take what is queued, unblocked."""
        records: list[LogRecord] = []
        generation = self._generation
        messages = self._consume(1, wait) if wait > 0 else []
        while True:
            if self._generation != generation:  # a rebalance ran inside consume
                records, generation = [], self._generation
            records.extend(self._accept(messages))
            room = min(max_records - len(records), DRAIN_MAX)
            if room <= 0:
                return records
            messages = self._consume(room, 0)
            if not messages and self._generation == generation:
                return records

    def _consume(self, count: int, wait: float) -> list[Message]:
        try:
            return self._consumer.consume(count, wait)
        except KafkaException as e:
            raise exception_error(e, f"poll of group {self._group!r}") from e

    def _refetch(self) -> None:
        """Make librdkafka fetch every assigned partition from our positions again."""
        partitions = [TopicPartition(self._topic, p, o) for p, o in self._positions.items()]
        try:
            self._consumer.assign(partitions)
        except KafkaException as e:
            raise exception_error(e, f"re-assigning group {self._group!r}") from e

    def _accept(self, messages: Sequence[Message]) -> list[LogRecord]:
        records = []
        gaps = False
        for message in messages:
            error = message.error()
            if error is None:
                record = self._record(message)
                if record is not None:
                    records.append(record)
                elif self._past_position(message):
                    gaps = True
            elif error.code() in _OUT_OF_RANGE:
                self._out_of_range(message.partition())
            elif error.code() != _EOF:
                self._report(error)
        if gaps:
            self._refetch()
        return records

    def _record(self, message: Message) -> LogRecord | None:
        """The record at the partition's position; None for a leftover from before a seek
        or a revocation, and for a record past the position (see ``_past_position``)."""
        partition, offset = message.partition(), message.offset()
        position = self._positions.get(partition) if partition is not None else None
        if position is None or offset is None or offset != position:
            logger.debug("dropped message %s:%s of group %s", partition, offset, self._group)
            return None
        record = to_record(message)
        self._positions[record.partition] = record.offset + 1
        return record

    def _past_position(self, message: Message) -> bool:
        """A record after a gap: never skipped over, the partition is fetched again.

        Chronolog's topics are dense (an idempotent producer, no transactions, no
        compaction). Yet under concurrent producers the local test broker has answered a
        fetch with records after one not yet readable; accepting them would lose it.
        """
        partition, offset = message.partition(), message.offset()
        position = self._positions.get(partition) if partition is not None else None
        if position is None or offset is None or offset <= position:
            return False
        now = time.monotonic()
        if now - self._gap_warned > GAP_WARNING_INTERVAL:
            self._gap_warned = now
            logger.warning(
                "%s: got offset %d first; fetching again",
                self._where(partition or 0, position, "fetch"),
                offset,
            )
        return True

    def _out_of_range(self, partition: int | None) -> None:
        """Kafka refused a position: fail if it was deleted, else wait for it to be written."""
        if partition is None or partition not in self._positions:
            return
        wanted = self._positions[partition]
        marks = self._probe(partition)
        if wanted < marks.low:
            raise EventLogError(
                f"{self._where(partition, wanted, 'fetch')}: before the log start "
                f"{marks.low}; records were deleted (retention or delete-records)"
            )
        self._refetch()  # past the end: ask again, as the embedded log waits for it

    def _report(self, error: KafkaError) -> None:
        if error.fatal() or error.code() in _PERMANENT:
            raise log_error(error, f"consumer of group {self._group!r} on topic {self._topic!r}")
        # librdkafka reconnects and retries by itself; these are news, not failures.
        logger.warning("consumer of group %s: %s", self._group, error.str())

    # --- checks ---------------------------------------------------------------------

    def _where(self, partition: int, offset: int, action: str) -> str:
        return (
            f"{action} of partition {partition} of topic {self._topic!r} at offset {offset} "
            f"(group {self._group!r})"
        )

    def _check_assigned(self, partition: int) -> int:
        self._check_open()
        if partition not in self._positions:
            raise EventLogError(
                f"partition {partition} of topic {self._topic!r} is not assigned to this "
                f"consumer of group {self._group!r} (assigned: {self.assignment()})"
            )
        return partition

    def _check_open(self) -> None:
        if self._closed:
            raise EventLogError(f"consumer of group {self._group!r} is closed")
