"""Token buckets per caller: pure arithmetic on a clock the caller passes in."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # when ``tokens`` was last computed (seconds, the caller's clock)


class RateLimiter:
    """``rate`` requests per second per key, with bursts of up to ``burst`` requests.

    A key unseen (or idle long enough to be full again) starts with a full bucket, so
    buckets that are full can be forgotten: that keeps at most ``max_keys`` of them
    however many callers come and go.
    """

    def __init__(self, rate: float, burst: int, max_keys: int = 10_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float) -> float | None:
        """Spend one request of ``key``'s bucket. None when allowed, else the seconds
        until one request will be."""
        bucket = self._buckets.pop(key, None)  # re-inserted last: most recently used
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = self._refilled(bucket, now)
            bucket.at = now
        self._buckets[key] = bucket
        wait = None if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate
        if wait is None:
            bucket.tokens -= 1
        self._bound(now)  # after spending: this caller's bucket is no longer full
        return wait

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, bucket: _Bucket, now: float) -> float:
        elapsed = max(0.0, now - bucket.at)  # a clock that steps back refills nothing
        return min(float(self.burst), bucket.tokens + elapsed * self.rate)

    def _bound(self, now: float) -> None:
        if len(self._buckets) <= self.max_keys:
            return
        full = [k for k, b in self._buckets.items() if self._refilled(b, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) > self.max_keys:  # still too many: least recently used go
            del self._buckets[next(iter(self._buckets))]


def retry_after_header(wait: float) -> str:
    """``Retry-After`` is whole seconds: round up, so a client that obeys it gets in."""
    return str(max(1, math.ceil(wait)))
