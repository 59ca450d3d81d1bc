"""Key -> partition must match Kafka's Java default partitioner exactly."""

from __future__ import annotations

import pytest

from events.partitioning import murmur2, partition_for

# org.apache.kafka.common.utils.UtilsTest#testMurmur2, plus one vector per tail length
# (0-3 trailing bytes) pinned by other Kafka clients; all agree with the Java code.
KAFKA_MURMUR2_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
    (b"", 275646681),
    (b"string-f-24-chars-length", 124730809),
    (b"string-fo-25-chars-length", 1269511650),
    (b"string-foo-26-chars-length", 119165628),
    (b"string-last-27-chars-length", 1089971754),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_MURMUR2_VECTORS)
def test_murmur2_matches_kafka_java_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_partition_is_positive_hash_modulo_partitions() -> None:
    # toPositive(-790332482) = 1357151166; 1357151166 % 50 = 16
    assert partition_for("foobar", 50) == 16
    assert partition_for("21", 12) == (-973932308 & 0x7FFFFFFF) % 12


def test_key_is_hashed_as_utf8() -> None:
    key = "job-ünïcode-✓"
    assert partition_for(key, 1000) == (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % 1000


def test_partition_is_stable_and_in_range() -> None:
    keys = [f"job-{i}" for i in range(2000)]
    partitions = [partition_for(key, 12) for key in keys]
    assert all(0 <= p < 12 for p in partitions)
    assert partitions == [partition_for(key, 12) for key in keys]
    assert set(partitions) == set(range(12))


def test_single_partition_takes_every_key() -> None:
    assert {partition_for(f"k{i}", 1) for i in range(100)} == {0}


@pytest.mark.parametrize("partitions", [0, -1])
def test_partition_count_must_be_positive(partitions: int) -> None:
    with pytest.raises(ValueError, match="partitions"):
        partition_for("key", partitions)
