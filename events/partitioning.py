"""Key to partition mapping, identical to Kafka's Java default partitioner.

Both log adapters use ``partition_for``: the Kafka adapter passes the partition
explicitly, so a key lands in the same partition whichever adapter wrote it, and
whichever client library (Java, librdkafka with ``murmur2_random``) reads it.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Final

_SEED: Final = 0x9747B28C
_M: Final = 0x5BD1E995
_MASK32: Final = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: a signed 32-bit hash, as Java returns it."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    whole = length - length % 4
    for (word,) in struct.iter_unpack("<I", data[:whole]):
        k = (word * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    tail = data[whole:]
    if tail:
        # Java's switch falls through: the last 1-3 bytes are folded in little-endian.
        h ^= int.from_bytes(tail, "little")
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: str, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``: ``toPositive(murmur2(utf8(key))) % n``."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    return _partition_for(key, partitions)


# Keys (job ids) repeat across a job's many events; the pure-Python hash costs ~5 us.
@lru_cache(maxsize=1 << 16)
def _partition_for(key: str, partitions: int) -> int:
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions
