import pytest

from api.rate_limit import RateLimiter, retry_after_header


def test_a_full_bucket_allows_a_burst_then_one_request_per_interval() -> None:
    limiter = RateLimiter(rate=2, burst=3)
    assert [limiter.take("a", 0.0) for _ in range(3)] == [None, None, None]
    assert limiter.take("a", 0.0) == pytest.approx(0.5)
    assert limiter.take("a", 0.25) == pytest.approx(0.25)  # a refusal spends nothing
    assert limiter.take("a", 0.5) is None
    assert limiter.take("a", 0.5) == pytest.approx(0.5)


def test_callers_have_their_own_buckets_and_idle_ones_refill_to_the_burst() -> None:
    limiter = RateLimiter(rate=1, burst=2)
    assert limiter.take("a", 0.0) is None
    assert limiter.take("a", 0.0) is None
    assert limiter.take("a", 0.0) is not None
    assert limiter.take("b", 0.0) is None
    assert [limiter.take("a", 100.0) for _ in range(3)][:2] == [None, None]
    assert limiter.take("a", 100.0) is not None


def test_a_clock_that_steps_back_refills_nothing() -> None:
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.take("a", 10.0) is None
    assert limiter.take("a", 5.0) == pytest.approx(1.0)


def test_memory_stays_bounded_however_many_callers_come() -> None:
    limiter = RateLimiter(rate=1, burst=5, max_keys=100)
    for i in range(10_000):
        limiter.take(f"caller-{i}", i * 0.001)
    assert len(limiter) <= 100
    # The busiest recent caller is still remembered: its spent bucket was not forgotten.
    for _ in range(5):
        limiter.take("busy", 20.0)
    for i in range(50):
        limiter.take(f"late-{i}", 20.0)
    assert limiter.take("busy", 20.0) is not None


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60")])
def test_retry_after_is_whole_seconds_rounded_up(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header


def test_a_limiter_needs_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(rate=1, burst=0)
