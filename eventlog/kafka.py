"""The ``EventLog`` port on a Kafka topic (``confluent-kafka``), without Kafka transactions.

- The topic is created explicitly with the configured partition count; an existing topic
  with another count is refused, since keys would then map to other partitions.
- Each record's partition is computed with ``events.partitioning.partition_for`` and
  passed to ``produce``, so this adapter and the SQLite one place a key alike.
- Appends use an idempotent producer with ``acks=all`` and return positions from the
  delivery reports. A batch is not atomic across partitions: when ``append`` raises,
  some of its records may have been appended (events carry ids, so retries are safe).
- Watermarks come from fetch responses (see ``eventlog.kafka_consumer``), never from
  ``ListOffsets``, which some Kafka-compatible brokers answer wrongly.
- ``consumer`` returns a consumer-group member (``KafkaLogConsumer``) that starts every
  assigned partition where its owner's ``on_assign`` says; offsets are never committed
  to Kafka (the read model's database holds the checkpoints).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from eventlog.kafka_consumer import (
    GROUP_DEFAULTS,
    READER_DEFAULTS,
    ClientConfig,
    KafkaLogConsumer,
    error_code,
    exception_error,
    log_error,
    probe_watermarks,
    read_partition,
)
from eventlog.port import EventLog, LogRecord, Position, Watermarks
from events.errors import EventLogError, EventLogUnavailable

logger = logging.getLogger(__name__)

Callback = Callable[[KafkaError | None, Message], None]
_Failure = tuple[int, int | None, KafkaError | None]
"""A failed record: its index in the append, its partition, the delivery error."""

DEFAULT_TOPIC: Final = "chronolog.events"
PRODUCER_DEFAULTS: Final[Mapping[str, Any]] = {
    "enable.idempotence": True,
    "acks": "all",
    # Appends wait for their delivery reports; lingering would only add latency.
    "linger.ms": 0,
    "allow.auto.create.topics": False,
}
TOPIC_DEFAULTS: Final[Mapping[str, str]] = {
    # The log is the source of truth: never delete it.
    "retention.ms": "-1",
    "retention.bytes": "-1",
    # Record timestamps are the broker's append time, as in the embedded log.
    "message.timestamp.type": "LogAppendTime",
}
_REPORT_WAIT: Final = 0.01
"""Longest wait for delivery reports before looking at the deadline again."""
_RETIRE_PRODUCER: Final = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
    }
)
"""Delivery errors after which a new producer is used (fatal errors are added to these)."""


class KafkaEventLog(EventLog):
    """The ``EventLog`` port on one Kafka topic.

    Args:
        bootstrap: ``host:port[,host:port...]`` of the cluster.
        topic: created with ``partitions`` partitions (and ``TOPIC_DEFAULTS``) if missing.
        partitions: must match an existing topic's partition count.
        replication_factor: used when the topic is created.
        client_config: librdkafka settings for every client (security, client.id...).
        producer_config: librdkafka settings for the producer only.
        consumer_config: settings for group consumers only (``session.timeout.ms``...).
        topic_config: topic settings used at creation, over ``TOPIC_DEFAULTS``.
        append_timeout: seconds an append may wait for its acknowledgements.
        request_timeout: seconds for admin requests, reads and watermark probes.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = DEFAULT_TOPIC,
        partitions: int = 12,
        replication_factor: int = 1,
        *,
        client_config: Mapping[str, Any] | None = None,
        producer_config: Mapping[str, Any] | None = None,
        consumer_config: Mapping[str, Any] | None = None,
        topic_config: Mapping[str, str] | None = None,
        append_timeout: float = 30.0,
        request_timeout: float = 30.0,
    ) -> None:
        if partitions < 1 or replication_factor < 1:
            raise ValueError(
                f"partitions and replication_factor must be >= 1, "
                f"got {partitions} and {replication_factor}"
            )
        if append_timeout <= 0 or request_timeout <= 0:
            raise ValueError("append_timeout and request_timeout must be positive")
        self._bootstrap = bootstrap
        self._topic = topic
        self._partitions = partitions
        self._append_timeout = append_timeout
        self._request_timeout = request_timeout
        common: ClientConfig = {**(client_config or {}), "bootstrap.servers": bootstrap}
        self._reader_config: ClientConfig = {**READER_DEFAULTS, **common}
        self._group_config: ClientConfig = {**GROUP_DEFAULTS, **common, **(consumer_config or {})}
        self._producer_config: ClientConfig = {
            **PRODUCER_DEFAULTS,
            **common,
            "message.timeout.ms": int(append_timeout * 1000),
            **(producer_config or {}),
        }
        self._producer_lock = threading.Lock()
        self._producer: Producer | None = None
        self._poll_lock = threading.Lock()  # one thread serves everyone's delivery reports
        self._closed = False
        _TopicAdmin(common, self._where(), request_timeout).ensure(
            topic, partitions, replication_factor, {**TOPIC_DEFAULTS, **(topic_config or {})}
        )
        # Created now: bad settings fail here, and the idempotent producer gets its
        # producer id (librdkafka retries that every 0.5 s) before the first append.
        self._producer_for_append()

    def __repr__(self) -> str:
        return f"KafkaEventLog({self._bootstrap!r}, {self._topic!r}, partitions={self._partitions})"

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def partitions(self) -> int:
        return self._partitions

    def append(self, records: Sequence[tuple[str, bytes]]) -> list[Position]:
        """Produce ``(key, value)`` records; return their positions once all are acknowledged.

        Raises ``EventLogUnavailable`` when the cluster does not acknowledge them within
        ``append_timeout``, ``EventLogError`` on other failures. Either way, some records
        of the call may have been appended.
        """
        partitions = self._partitions_of(records)
        if not records:
            return []
        producer = self._producer_for_append()
        deadline = time.monotonic() + self._append_timeout
        reports = _DeliveryReports(len(records))
        self._produce_all(producer, records, partitions, reports, deadline)
        # librdkafka fails undelivered records at message.timeout.ms; this is a backstop.
        self._await(producer, reports, deadline + 5.0)
        failure = reports.first_failure()
        if failure is not None:
            raise self._failed(producer, reports, failure)
        return reports.positions()

    def read(self, partition: int, offset: int, limit: int = 1000) -> list[LogRecord]:
        """Records of ``partition`` from ``offset`` on, at most ``limit``; ends at the end."""
        self._check_partition(partition)
        if offset < 0 or limit < 1:
            raise ValueError(f"need offset >= 0 and limit >= 1, got {offset} and {limit}")
        return read_partition(
            self._reader_config,
            self._topic,
            partition,
            offset,
            limit=limit,
            timeout=self._request_timeout,
        )

    def watermarks(self, partition: int) -> Watermarks:
        """Low and high offsets as a fetch of ``partition`` reports them (one round trip)."""
        self._check_partition(partition)
        return self._probe([partition])[partition]

    def all_watermarks(self) -> dict[int, Watermarks]:
        """Every partition's watermarks from one probe (one consumer, one fetch)."""
        self._check_open()
        return self._probe(range(self._partitions))

    def consumer(self, group: str) -> KafkaLogConsumer:
        """A member of consumer group ``group``; the group splits the partitions."""
        self._check_open()
        config = {**self._group_config, "group.id": group}
        return KafkaLogConsumer(config, self._topic, self.watermarks)

    def close(self) -> None:
        """Wait (up to ``append_timeout``) for outstanding deliveries; later calls raise."""
        with self._producer_lock:
            self._closed = True
            producer, self._producer = self._producer, None
        if producer is not None:
            left = producer.flush(self._append_timeout)
            if left:
                logger.warning("%r closed with %d records unacknowledged", self, left)

    # --- internals ------------------------------------------------------------------

    def _probe(self, partitions: Sequence[int]) -> dict[int, Watermarks]:
        return probe_watermarks(self._reader_config, self._topic, partitions, self._request_timeout)

    def _producer_for_append(self) -> Producer:
        """The shared producer, created if there is none (yet, or since a failure)."""
        with self._producer_lock:
            self._check_open()
            if self._producer is None:
                config = {**self._producer_config, "error_cb": self._producer_error}
                try:
                    self._producer = Producer(config)
                except KafkaException as e:
                    raise exception_error(e, f"creating the producer for {self._where()}") from e
            return self._producer

    def _producer_error(self, error: KafkaError) -> None:
        # Failed deliveries report these too; appends act on those (see _failed).
        logger.warning("producer of %s: %s", self._where(), error.str())

    def _failed(
        self, producer: Producer, reports: _DeliveryReports, failure: _Failure
    ) -> EventLogError:
        """The error for a failed append; retires the producer if it cannot go on.

        After a delivery timeout librdkafka bumps the idempotent producer's epoch, which
        some brokers answer by fencing it for good; a new producer (new id) starts clean.
        """
        index, partition, error = failure
        what = (
            f"append to {self._where()} failed for {reports.failed} of {reports.count} "
            f"records (first: record {index}, partition {partition})"
        )
        result = log_error(error, what)
        if error is None or not (error.fatal() or error.code() in _RETIRE_PRODUCER):
            return result
        with self._producer_lock:
            if self._producer is producer:
                self._producer = None
        return EventLogUnavailable(f"{result}; the producer was replaced, retry the append")

    def _produce_all(
        self,
        producer: Producer,
        records: Sequence[tuple[str, bytes]],
        partitions: Sequence[int],
        reports: _DeliveryReports,
        deadline: float,
    ) -> None:
        for index, ((key, value), partition) in enumerate(zip(records, partitions, strict=True)):
            message = {"key": key, "value": value, "partition": partition}
            self._produce(producer, message, reports.callback(index), deadline)

    def _produce(
        self, producer: Producer, message: dict[str, Any], report: Callback, deadline: float
    ) -> None:
        while True:
            try:
                producer.produce(self._topic, **message, on_delivery=report)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                if time.monotonic() > deadline:
                    raise EventLogUnavailable(
                        f"append to {self._where()}: producer queue still full after "
                        f"{self._append_timeout} s"
                    ) from None
                self._serve_reports(producer, None)
            except KafkaException as e:
                where = f"append of key {message['key']!r} to partition {message['partition']}"
                raise exception_error(e, f"{where} of {self._where()}") from e

    def _await(self, producer: Producer, reports: _DeliveryReports, deadline: float) -> None:
        while not reports.complete.is_set():
            if time.monotonic() > deadline:
                raise EventLogUnavailable(
                    f"append of {reports.count} records to {self._where()} not acknowledged "
                    f"within {self._append_timeout} s; some may still be appended"
                )
            self._serve_reports(producer, reports)

    def _serve_reports(self, producer: Producer, reports: _DeliveryReports | None) -> None:
        """Run delivery callbacks, or, while another thread does, wait for ``reports``.

        One thread at a time polls: it completes the others' appends, which then wake
        at once instead of sitting out a poll of their own.
        """
        if self._poll_lock.acquire(blocking=False):
            try:
                producer.poll(_REPORT_WAIT)
            finally:
                self._poll_lock.release()
        elif reports is not None:
            reports.complete.wait(_REPORT_WAIT)
        else:
            time.sleep(_REPORT_WAIT)

    def _partitions_of(self, records: Sequence[tuple[str, bytes]]) -> list[int]:
        self._check_open()
        return self.partitions_of(records)

    def _check_partition(self, partition: int) -> None:
        self._check_open()
        self.check_partition(partition)

    def _check_open(self) -> None:
        if self._closed:
            raise EventLogError(f"event log {self._where()} is closed")

    def _where(self) -> str:
        return f"topic {self._topic!r} at {self._bootstrap}"


class _DeliveryReports:
    """The delivery reports of one ``append`` call, filled in by librdkafka callbacks.

    Callbacks run in the one thread that polls the producer at a time (any thread's
    append may be completed by another's poll); ``complete`` is set by the last one.
    """

    __slots__ = ("_errors", "_positions", "_reported", "complete", "count")

    def __init__(self, count: int) -> None:
        self.count = count
        self.complete = threading.Event()
        self._positions: list[Position | None] = [None] * count
        self._errors: list[_Failure] = []
        self._reported = 0

    def callback(self, index: int) -> Callback:
        def report(error: KafkaError | None, message: Message) -> None:
            partition, offset = message.partition(), message.offset()
            if error is None and partition is not None and offset is not None and offset >= 0:
                self._positions[index] = Position(partition, offset)
            else:
                self._errors.append((index, partition, error))
            self._reported += 1
            if self._reported == self.count:
                self.complete.set()

        return report

    @property
    def failed(self) -> int:
        return len(self._errors)

    def first_failure(self) -> _Failure | None:
        """The failed record with the lowest index, and its error; ``None`` if none failed."""
        return min(self._errors, key=lambda failure: failure[0], default=None)

    def positions(self) -> list[Position]:
        """Every record's position, in input order (all were acknowledged)."""
        positions = [p for p in self._positions if p is not None]
        assert len(positions) == self.count and not self._errors
        return positions


class _TopicAdmin:
    """Creates the log's topic, or checks an existing one, with an ``AdminClient``."""

    def __init__(self, config: ClientConfig, where: str, timeout: float) -> None:
        self._admin = AdminClient(config)
        self._where = where
        self._timeout = timeout

    def ensure(
        self, topic: str, partitions: int, replication: int, config: Mapping[str, str]
    ) -> None:
        existing = self._partition_count(topic)
        if existing is None:
            self._create(NewTopic(topic, partitions, replication, config=dict(config)))
            existing = self._wait_for(topic)
        if existing != partitions:
            raise EventLogError(
                f"{self._where} has {existing} partitions, opened with {partitions}: keys "
                f"would move to other partitions; open it with partitions={existing}"
            )

    def _partition_count(self, topic: str) -> int | None:
        # Listing all topics never auto-creates the one we ask about.
        try:
            metadata = self._admin.list_topics(timeout=self._timeout)
        except KafkaException as e:
            raise exception_error(e, f"listing topics of {self._where}") from e
        found = metadata.topics.get(topic)
        if found is None:
            return None
        if found.error is not None:
            raise log_error(found.error, f"describing {self._where}")
        return len(found.partitions)

    def _create(self, new_topic: NewTopic) -> None:
        futures = self._admin.create_topics([new_topic], request_timeout=self._timeout)
        try:
            futures[new_topic.topic].result(timeout=self._timeout)
        except TimeoutError as e:
            raise EventLogUnavailable(
                f"creating {self._where}: no answer within {self._timeout} s"
            ) from e
        except KafkaException as e:
            if error_code(e) != KafkaError.TOPIC_ALREADY_EXISTS:  # else: created meanwhile
                raise exception_error(e, f"creating {self._where}") from e
        logger.info("created %s with %d partitions", self._where, new_topic.num_partitions)

    def _wait_for(self, topic: str) -> int:
        """The new topic's partition count, once the cluster's metadata shows it."""
        deadline = time.monotonic() + self._timeout
        while (count := self._partition_count(topic)) is None:
            if time.monotonic() > deadline:
                raise EventLogUnavailable(f"{self._where} was created but did not appear")
            time.sleep(0.05)
        return count
