"""The ``LeaseStore`` contract: every adapter must pass these tests.

To add an adapter, add a ``<name>_backend`` fixture returning a ``Backend`` on one fresh,
empty store, and add ``<name>`` to ``ADAPTERS``. ``advance`` may jump a fake clock (exact
and fast) or, for a server that keeps its own time, wait in real time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import multiprocessing
import re
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from pathlib import Path

import orjson
import pytest
import redis
from redis.crc import key_slot

from leases.errors import LeaseError, LeaseStoreUnavailable
from leases.port import (
    AsyncSubscription,
    Lease,
    LeaseStore,
    Message,
    QueueItem,
    RunEnd,
    Subscription,
    Taken,
    TakenItem,
)
from leases.redis_store import RedisLeaseStore
from leases.sqlite_store import (
    CHANNEL_BYTES,
    FORMAT_VERSION,
    MESSAGE_RETENTION,
    PRUNE_INTERVAL,
    WAL_LIMIT,
    SqliteLeaseStore,
)

ADAPTERS = ["sqlite", "redis"]
REDIS_SPEED = 15.0
"""How much faster store time runs than real time on Redis: a 30 s ttl lasts 2 s."""
SPAWN = multiprocessing.get_context("spawn")

Opener = Callable[[], LeaseStore]


class FakeClock:
    """A store clock that moves only when told to (starts at the real time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FastTime:
    """Store time for a server that keeps its own clock: it runs ``speed`` times faster
    than real time, because ``FastTimeStore`` divides every ttl by ``speed``."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.origin = time.time()

    def __call__(self) -> float:
        return self.from_real(time.time())

    def from_real(self, real: float) -> float:
        return self.origin + (real - self.origin) * self.speed

    def advance(self, seconds: float) -> None:
        time.sleep(seconds / self.speed)


class FastTimeStore(LeaseStore):
    """A store seen on ``FastTime``: ttls shrink, expiry times map back to store time."""

    def __init__(self, inner: LeaseStore, fast: FastTime) -> None:
        self._inner = inner
        self._fast = fast

    def acquire(self, key: str, owner: str, ttl: float) -> Lease | None:
        lease = self._inner.acquire(key, owner, ttl / self._fast.speed)
        return None if lease is None else self._scaled(lease)

    def renew(self, key: str, token: int, ttl: float) -> bool:
        return self._inner.renew(key, token, ttl / self._fast.speed)

    def release(self, key: str, token: int) -> bool:
        return self._inner.release(key, token)

    def renew_many(self, leases: Sequence[tuple[str, int]], ttl: float) -> list[bool]:
        return self._inner.renew_many(leases, ttl / self._fast.speed)

    def take_runs(
        self, queues: Sequence[str], owner: str, ttl: float, limit: int, timeout: float
    ) -> list[TakenItem]:
        taken = self._inner.take_runs(queues, owner, ttl / self._fast.speed, limit, timeout)
        return [
            one
            if one.taken.lease is None
            else dataclasses.replace(
                one, taken=dataclasses.replace(one.taken, lease=self._scaled(one.taken.lease))
            )
            for one in taken
        ]

    def finish_runs(self, ends: Sequence[RunEnd], flag_ttl: float) -> list[bool]:
        return self._inner.finish_runs(ends, flag_ttl / self._fast.speed)

    def inspect(self, keys: Sequence[str]) -> dict[str, Lease]:
        return {key: self._scaled(lease) for key, lease in self._inner.inspect(keys).items()}

    def ensure_token_floor(self, floor: int) -> None:
        self._inner.ensure_token_floor(floor)

    def push(self, queue: str, item: QueueItem) -> bool:
        return self._inner.push(queue, item)

    def push_many(self, items: Sequence[tuple[str, QueueItem]]) -> list[bool]:
        return self._inner.push_many(items)

    def pop(self, queues: Sequence[str], timeout: float) -> tuple[str, QueueItem] | None:
        return self._inner.pop(queues, timeout)

    def remove(self, queue: str, item_id: str) -> bool:
        return self._inner.remove(queue, item_id)

    def queued_ids(self, queue: str) -> set[str]:
        return self._inner.queued_ids(queue)

    def queue_depths(self, queues: Sequence[str]) -> dict[str, int]:
        return self._inner.queue_depths(queues)

    def set_flag(self, key: str, ttl: float) -> None:
        self._inner.set_flag(key, ttl / self._fast.speed)

    def has_flag(self, key: str) -> bool:
        return self._inner.has_flag(key)

    def raised_flags(self, keys: Sequence[str]) -> set[str]:
        return self._inner.raised_flags(keys)

    def publish(self, channel: str, data: bytes) -> None:
        self._inner.publish(channel, data)

    def subscribe(self, channels: Sequence[str]) -> Subscription:
        return self._inner.subscribe(channels)

    async def subscribe_async(self, channels: Sequence[str]) -> AsyncSubscription:
        return await self._inner.subscribe_async(channels)

    def close(self) -> None:
        self._inner.close()

    def _scaled(self, lease: Lease) -> Lease:
        renewed = lease.renewed_at
        return dataclasses.replace(
            lease,
            expires_at=self._fast.from_real(lease.expires_at),
            renewed_at=None if renewed is None else self._fast.from_real(renewed),
        )


@dataclass(frozen=True)
class Backend:
    """How the contract reaches one adapter.

    Attributes:
        open: a new handle on the store, on the test's clock, for this process.
        open_shared: picklable; a new handle on the same store on real time, for other
            processes and for real-time tests.
        advance: let ``seconds`` of store time pass for handles made by ``open``.
        now: the store time seen by handles made by ``open``.
    """

    open: Opener
    open_shared: Opener
    advance: Callable[[float], None]
    now: Callable[[], float]


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Backend:
    path = tmp_path / "leases.db"
    clock = FakeClock()
    return Backend(
        open=functools.partial(SqliteLeaseStore, path, clock=clock),
        open_shared=functools.partial(SqliteLeaseStore, path),
        advance=clock.advance,
        now=clock,
    )


def _open_fast_redis(url: str, prefix: str, fast: FastTime) -> LeaseStore:
    return FastTimeStore(RedisLeaseStore(url, prefix=prefix), fast)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own (keys are deleted after it): a fresh, empty store."""
    prefix = f"chronolog-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    admin = redis.Redis.from_url(redis_url)
    try:
        delete_keys(admin, prefix)
    finally:
        admin.close()


@pytest.fixture
def redis_backend(redis_url: str, redis_prefix: str) -> Backend:
    fast = FastTime(REDIS_SPEED)
    return Backend(
        open=functools.partial(_open_fast_redis, redis_url, redis_prefix, fast),
        open_shared=functools.partial(RedisLeaseStore, redis_url, prefix=redis_prefix),
        advance=fast.advance,
        now=fast,
    )


def delete_keys(admin: redis.Redis, prefix: str) -> int:
    """Delete every key under ``prefix``, as FLUSHALL would, leaving other keys alone."""
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
    keys = list(admin.scan_iter(match=pattern, count=1000))
    for start in range(0, len(keys), 1000):
        admin.unlink(*keys[start : start + 1000])
    return len(keys)


@pytest.fixture(params=ADAPTERS)
def backend(request: pytest.FixtureRequest) -> Backend:
    found: Backend = request.getfixturevalue(f"{request.param}_backend")
    return found


@pytest.fixture
def open_store(backend: Backend) -> Iterator[Callable[[Opener], LeaseStore]]:
    """Opens handles with the given opener and closes them after the test."""
    opened: list[LeaseStore] = []

    def open_with(opener: Opener) -> LeaseStore:
        opened.append(opener())
        return opened[-1]

    yield open_with
    for store in opened:
        store.close()


@pytest.fixture
def store(backend: Backend, open_store: Callable[[Opener], LeaseStore]) -> LeaseStore:
    return open_store(backend.open)


@pytest.fixture
def other(backend: Backend, open_store: Callable[[Opener], LeaseStore]) -> LeaseStore:
    """A second handle on the same store, as another process would have."""
    return open_store(backend.open)


def poll_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(0.01)


def item(item_id: str, priority: int = 0) -> QueueItem:
    return QueueItem(item_id, priority, f"payload of {item_id}".encode())


def pop_all(store: LeaseStore, queues: list[str]) -> list[str]:
    popped: list[str] = []
    while (got := store.pop(queues, 0)) is not None:
        popped.append(got[1].id)
    return popped


# --- leases ------------------------------------------------------------------------


def test_acquire_gives_a_lease_with_owner_token_and_expiry(
    store: LeaseStore, backend: Backend
) -> None:
    lease = store.acquire("run:1", "worker-a", ttl=30)
    assert lease is not None
    assert (lease.key, lease.owner) == ("run:1", "worker-a")
    assert lease.token > 0
    assert lease.expires_at == pytest.approx(backend.now() + 30, abs=1)
    assert lease.renewed_at == pytest.approx(backend.now(), abs=1)
    assert store.inspect(["run:1"])["run:1"] == lease


def test_live_lease_is_refused_to_another_owner(store: LeaseStore, backend: Backend) -> None:
    assert store.acquire("run:1", "worker-a", ttl=30) is not None
    backend.advance(29)
    assert store.acquire("run:1", "worker-b", ttl=30) is None


def test_reacquiring_own_live_lease_gives_a_higher_token(store: LeaseStore) -> None:
    first = store.acquire("run:1", "worker-a", ttl=30)
    second = store.acquire("run:1", "worker-a", ttl=30)
    assert first is not None and second is not None
    assert second.token > first.token
    assert not store.renew("run:1", first.token, ttl=30)


def test_tokens_strictly_increase_across_keys_reacquires_and_handles(
    store: LeaseStore, other: LeaseStore
) -> None:
    tokens = []
    for i in range(20):
        handle = store if i % 2 else other
        lease = handle.acquire(f"run:{i % 3}", "worker-a", ttl=30)
        assert lease is not None
        tokens.append(lease.token)
    assert tokens == sorted(set(tokens))


def test_renew_extends_the_lease_held_with_the_current_token(
    store: LeaseStore, backend: Backend
) -> None:
    lease = store.acquire("run:1", "worker-a", ttl=10)
    assert lease is not None
    backend.advance(8)
    assert store.renew("run:1", lease.token, ttl=10)
    backend.advance(8)
    assert store.acquire("run:1", "worker-b", ttl=10) is None
    renewed = store.inspect(["run:1"])["run:1"]
    assert renewed.token == lease.token
    assert renewed.expires_at == pytest.approx(backend.now() + 2, abs=1)
    assert lease.renewed_at is not None and renewed.renewed_at is not None
    assert renewed.renewed_at - lease.renewed_at == pytest.approx(8, abs=1)


def test_renewed_at_moves_only_with_a_successful_renewal(
    store: LeaseStore, backend: Backend
) -> None:
    lease = store.acquire("worker:w1", "w1", ttl=10)
    assert lease is not None
    backend.advance(3)
    assert not store.renew("worker:w1", lease.token + 1, ttl=10)  # a fenced-off holder
    assert store.inspect(["worker:w1"])["worker:w1"].renewed_at == lease.renewed_at
    assert store.renew("worker:w1", lease.token, ttl=10)
    renewed_at = store.inspect(["worker:w1"])["worker:w1"].renewed_at
    assert renewed_at == pytest.approx(backend.now(), abs=1)
    again = store.acquire("worker:w1", "w1", ttl=10)  # re-taking one's own lease is a renewal
    assert again is not None and again.renewed_at is not None and renewed_at is not None
    assert again.renewed_at >= renewed_at


def test_renew_with_a_wrong_token_or_unknown_key_fails(store: LeaseStore) -> None:
    lease = store.acquire("run:1", "worker-a", ttl=10)
    assert lease is not None
    assert not store.renew("run:1", lease.token + 1000, ttl=10)
    assert not store.renew("run:2", lease.token, ttl=10)


def test_expired_lease_cannot_be_renewed_even_if_nobody_took_it(
    store: LeaseStore, backend: Backend
) -> None:
    lease = store.acquire("run:1", "worker-a", ttl=2)
    assert lease is not None
    backend.advance(2.5)
    assert not store.renew("run:1", lease.token, ttl=10)
    assert store.inspect(["run:1"]) == {}


def test_expired_lease_goes_to_another_owner_with_a_higher_token(
    store: LeaseStore, other: LeaseStore, backend: Backend
) -> None:
    lost = store.acquire("run:1", "worker-a", ttl=2)
    assert lost is not None
    backend.advance(2.5)
    taken = other.acquire("run:1", "worker-b", ttl=10)
    assert taken is not None
    assert taken.token > lost.token
    assert not store.renew("run:1", lost.token, ttl=10)
    assert not store.release("run:1", lost.token)
    assert store.inspect(["run:1"])["run:1"].owner == "worker-b"


def test_lease_expires_in_real_time(
    backend: Backend, open_store: Callable[[Opener], LeaseStore]
) -> None:
    store = open_store(backend.open_shared)
    lost = store.acquire("leader", "scheduler-a", ttl=0.2)
    assert lost is not None
    assert store.acquire("leader", "scheduler-b", ttl=0.2) is None
    taken: list[int] = []

    def taken_over() -> bool:
        lease = store.acquire("leader", "scheduler-b", ttl=10)
        taken.extend([] if lease is None else [lease.token])
        return bool(taken)

    poll_until(taken_over)
    assert taken[0] > lost.token
    assert not store.renew("leader", lost.token, ttl=10)


def test_renew_many_renews_each_held_lease_and_fails_only_the_lost_ones(
    store: LeaseStore, other: LeaseStore, backend: Backend
) -> None:
    a = store.acquire("a", "w1", 10)
    b = store.acquire("b", "w1", 10)
    c = store.acquire("c", "w1", 10)
    assert a is not None and b is not None and c is not None
    assert store.release("b", b.token)
    backend.advance(8)
    kept = store.renew_many([("a", a.token), ("b", b.token), ("c", c.token + 99), ("d", 1)], 10)
    assert kept == [True, False, False, False]
    backend.advance(8)  # past the first expiry: only the renewed lease lives
    assert set(other.inspect(["a", "b", "c"])) == {"a"}
    assert store.renew_many([], 10) == []


def test_renew_many_handles_more_leases_than_one_script_call(store: LeaseStore) -> None:
    held = [store.acquire(f"k{i}", "w1", 30) for i in range(1200)]
    pairs = [(lease.key, lease.token) for lease in held if lease is not None]
    lost = pairs[700]
    assert store.release(*lost)
    kept = store.renew_many(pairs, 30)
    assert len(kept) == 1200
    assert [i for i, ok in enumerate(kept) if not ok] == [700]


def assert_expires_ttl_after_the_call(
    expires_at: float, ttl: float, before: float, after: float
) -> None:
    """The lease ends ``ttl`` after the store's time during the call, however long it took
    (a bound from both sides instead of a tolerance that a loaded machine can exceed)."""
    # The stores keep times in whole milliseconds (the ttl and the clock each rounded),
    # and on Redis the test's time runs REDIS_SPEED times faster than the store's.
    rounding = 2 * 0.001 * REDIS_SPEED
    assert before + ttl - rounding <= expires_at <= after + ttl + rounding


# --- taking and ending runs in batches ------------------------------------------------

TakeRuns = Callable[[Sequence[str], str, float, int, float], list[TakenItem]]
FinishRuns = Callable[[Sequence[RunEnd], float], list[bool]]


@pytest.fixture(params=["adapter", "port-default"])
def take_runs(request: pytest.FixtureRequest, store: LeaseStore) -> TakeRuns:
    """The adapter's ``take_runs``, or the port's default made of its other steps."""
    if request.param == "adapter":
        return store.take_runs
    return functools.partial(LeaseStore.take_runs, store)


@pytest.fixture(params=["adapter", "port-default"])
def finish_runs(request: pytest.FixtureRequest, store: LeaseStore) -> FinishRuns:
    if request.param == "adapter":
        return store.finish_runs
    return functools.partial(LeaseStore.finish_runs, store)


def ticket_item(run_id: str, priority: int = 0, attempt: int = 1) -> QueueItem:
    """A queue entry whose payload is a dispatch ticket (only what stores read of it)."""
    return QueueItem(run_id, priority, orjson.dumps({"run_id": run_id, "attempt": attempt}))


def test_take_runs_pops_by_priority_over_queues_and_takes_each_lease(
    store: LeaseStore, other: LeaseStore, backend: Backend, take_runs: TakeRuns
) -> None:
    store.push("gpu", ticket_item("g1", 1))
    store.push("default", ticket_item("d1", 1))
    store.push("default", ticket_item("d2", 7))
    store.push("gpu", ticket_item("g2", 1))
    store.push("other", ticket_item("o1", 100))
    before = backend.now()
    taken = take_runs(["gpu", "default"], "w1", 10, 3, 0)
    after = backend.now()
    assert [(one.queue, one.item) for one in taken] == [
        ("default", ticket_item("d2", 7)),
        ("gpu", ticket_item("g1", 1)),
        ("default", ticket_item("d1", 1)),
    ]
    leases = [one.taken.lease for one in taken]
    assert all(lease is not None and lease.owner == "w1" for lease in leases)
    tokens = [lease.token for lease in leases if lease is not None]
    assert tokens == sorted(tokens) and len(set(tokens)) == 3
    assert leases[0] is not None
    assert leases[0].key == "run:d2"
    assert_expires_ttl_after_the_call(leases[0].expires_at, 10, before, after)
    assert not any(one.taken.cancelled or one.taken.finished for one in taken)
    held = other.inspect(["run:d2", "run:g1", "run:d1", "run:g2"])
    assert {key: lease.token for key, lease in held.items()} == {
        "run:d2": tokens[0],
        "run:g1": tokens[1],
        "run:d1": tokens[2],
    }
    assert other.queued_ids("gpu") == {"g2"} and other.queued_ids("other") == {"o1"}


def test_take_runs_drops_finished_and_held_runs_and_reads_cancels(
    store: LeaseStore, other: LeaseStore, backend: Backend, take_runs: TakeRuns
) -> None:
    other.set_flag("finished:done:1", 60)
    theirs = other.acquire("run:theirs", "w2", 10)
    mine = store.acquire("run:mine", "w1", 10)  # a duplicate entry of a run w1 runs
    expired = other.acquire("run:expired", "w2", 1)
    assert theirs is not None and mine is not None and expired is not None
    other.set_flag("cancel:cancelled", 60)
    backend.advance(2)
    for entry in [
        ticket_item("done"),
        ticket_item("theirs"),
        ticket_item("mine"),
        ticket_item("cancelled"),
        ticket_item("expired"),
        ticket_item("done-before", attempt=2),  # another attempt of a finished one
        QueueItem("unreadable", 0, b"not a ticket"),
    ]:
        store.push("default", entry)
    other.set_flag("finished:done-before:1", 60)
    taken = {one.item.id: one.taken for one in take_runs(["default"], "w1", 10, 10, 0)}
    assert taken["done"] == Taken(None, finished=True)
    assert taken["theirs"] == Taken(None)
    assert taken["mine"] == Taken(None)
    assert taken["unreadable"] == Taken(None)
    assert taken["cancelled"].cancelled and taken["cancelled"].lease is not None
    assert taken["expired"].lease is not None and taken["expired"].lease.token > expired.token
    assert taken["done-before"].lease is not None and not taken["done-before"].finished
    assert len(taken) == 7 and other.queued_ids("default") == set()
    leases = other.inspect(["run:done", "run:theirs", "run:mine", "run:unreadable"])
    assert {key: lease.token for key, lease in leases.items()} == {
        "run:theirs": theirs.token,
        "run:mine": mine.token,  # not re-taken with a new token
    }


def test_take_runs_waits_for_the_first_item_up_to_the_timeout(
    store: LeaseStore, other: LeaseStore, take_runs: TakeRuns
) -> None:
    assert take_runs(["default"], "w1", 10, 5, 0) == []
    assert take_runs(["default"], "w1", 10, 5, 0.05) == []
    pusher = threading.Timer(0.1, lambda: other.push("default", ticket_item("late")))
    pusher.start()
    try:
        taken = take_runs(["gpu", "default"], "w1", 10, 5, 10)
    finally:
        pusher.join()
    assert [(one.queue, one.item.id) for one in taken] == [("default", "late")]
    assert taken[0].taken.lease is not None


def test_take_runs_needs_queues_a_limit_and_a_timeout(take_runs: TakeRuns) -> None:
    for queues, limit, timeout in [([], 1, 0.0), (["default"], 0, 0.0), (["default"], 1, -1.0)]:
        with pytest.raises(ValueError):
            take_runs(queues, "w1", 10, limit, timeout)


def test_finish_runs_flags_and_releases_many_runs_in_one_call(
    store: LeaseStore, other: LeaseStore, finish_runs: FinishRuns
) -> None:
    for run_id in ["a", "b", "c"]:
        store.push("default", ticket_item(run_id))
    taken = {one.item.id: one.taken.lease for one in store.take_runs(["default"], "w1", 10, 3, 0)}
    a, b, c = taken["a"], taken["b"], taken["c"]
    assert a is not None and b is not None and c is not None
    assert finish_runs([], 60) == []
    ends = [
        RunEnd(a.key, a.token, "finished:a:1"),
        RunEnd(b.key, b.token),  # handed back: no flag
        RunEnd(c.key, c.token + 1000, "finished:c:1"),  # not its token: flag, no release
    ]
    assert finish_runs(ends, 60) == [True, True, False]
    assert other.raised_flags(["finished:a:1", "finished:b:1", "finished:c:1"]) == {
        "finished:a:1",
        "finished:c:1",
    }
    assert set(other.inspect(["run:a", "run:b", "run:c"])) == {"run:c"}


def test_release_needs_the_current_token(store: LeaseStore) -> None:
    lease = store.acquire("run:1", "worker-a", ttl=30)
    assert lease is not None
    assert not store.release("run:1", lease.token + 1000)
    assert store.acquire("run:1", "worker-b", ttl=30) is None
    assert store.release("run:1", lease.token)
    assert not store.release("run:1", lease.token)
    assert store.acquire("run:1", "worker-b", ttl=30) is not None


def test_release_of_an_expired_lease_fails(store: LeaseStore, backend: Backend) -> None:
    lease = store.acquire("run:1", "worker-a", ttl=2)
    assert lease is not None
    backend.advance(3)
    assert not store.release("run:1", lease.token)


def test_inspect_returns_only_live_leases(store: LeaseStore, backend: Backend) -> None:
    short = store.acquire("run:short", "worker-a", ttl=2)
    live = {f"run:{i}": store.acquire(f"run:{i}", f"worker-{i % 7}", ttl=30) for i in range(700)}
    assert short is not None
    backend.advance(3)
    keys = ["run:short", "run:missing", *live, "run:0"]
    assert store.inspect(keys) == live
    assert store.inspect([]) == {}


def test_token_floor_raises_future_tokens_and_never_lowers_them(store: LeaseStore) -> None:
    store.ensure_token_floor(1000)
    first = store.acquire("run:1", "worker-a", ttl=30)
    store.ensure_token_floor(5)
    second = store.acquire("run:2", "worker-a", ttl=30)
    assert first is not None and second is not None
    assert first.token > 1000
    assert second.token > first.token


@pytest.mark.parametrize("ttl", [0, -1.5])
def test_ttl_must_be_positive(store: LeaseStore, ttl: float) -> None:
    with pytest.raises(ValueError, match="run:1"):
        store.acquire("run:1", "worker-a", ttl=ttl)
    with pytest.raises(ValueError, match="cancel:1"):
        store.set_flag("cancel:1", ttl=ttl)


@dataclass(frozen=True)
class HolderLog:
    """Shared memory that only the current lease holder writes."""

    holder: Synchronized[int]  # number of the process holding the key, 0 when free
    tokens: SynchronizedArray[int]  # token of each turn, in turn order
    turns: Synchronized[int]

    @classmethod
    def create(cls, size: int) -> HolderLog:
        return cls(SPAWN.Value("i", 0), SPAWN.Array("q", size), SPAWN.Value("i", 0))

    def enter(self, number: int, token: int) -> None:
        if self.holder.value != 0:
            raise AssertionError(f"process {number} got the key held by {self.holder.value}")
        self.holder.value = number
        self.tokens[self.turns.value] = token
        self.turns.value += 1

    def leave(self, number: int) -> None:
        if self.holder.value != number:
            raise AssertionError(f"process {self.holder.value} took the key from {number}")
        self.holder.value = 0


def _hold_in_turns(open_shared: Opener, number: int, turns: int, log: HolderLog) -> None:
    """Take the key ``turns`` times; while holding it, check nobody else does."""
    store = open_shared()
    deadline = time.monotonic() + 20
    try:
        for _ in range(turns):
            while (lease := store.acquire("leader", f"process-{number}", ttl=30)) is None:
                assert time.monotonic() < deadline, f"process {number} never got a turn"
                time.sleep(0.0005)
            log.enter(number, lease.token)
            time.sleep(0.0005)  # widen the window another holder would show up in
            log.leave(number)
            assert store.release("leader", lease.token)
    finally:
        store.close()


def test_one_key_has_one_holder_at_a_time_across_processes(backend: Backend) -> None:
    processes, turns = 3, 30
    log = HolderLog.create(processes * turns)
    _run_all(
        [
            SPAWN.Process(target=_hold_in_turns, args=(backend.open_shared, n + 1, turns, log))
            for n in range(processes)
        ]
    )
    assert log.turns.value == processes * turns
    tokens = log.tokens[:]
    assert tokens == sorted(set(tokens)), "tokens must grow from holder to holder"


def _race_once(open_shared: Opener, number: int, start: threading.Barrier, out: Path) -> None:
    store = open_shared()
    try:
        start.wait(timeout=30)
        lease = store.acquire("run:raced", f"process-{number}", ttl=30)
        out.write_text("won" if lease is not None else "lost")
    finally:
        store.close()


def test_concurrent_acquire_from_processes_has_exactly_one_winner(
    backend: Backend, tmp_path: Path
) -> None:
    processes = 3
    start = SPAWN.Barrier(processes)
    outs = [tmp_path / f"race-{n}.txt" for n in range(processes)]
    _run_all(
        [
            SPAWN.Process(target=_race_once, args=(backend.open_shared, n, start, outs[n]))
            for n in range(processes)
        ]
    )
    assert sorted(out.read_text() for out in outs) == ["lost", "lost", "won"]


def _run_all(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.start()
    _join_all(processes)


def _join_all(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.join(timeout=30)
    assert [p.exitcode for p in processes] == [0] * len(processes)


# --- dispatch queues ---------------------------------------------------------------


def test_pop_takes_the_highest_priority_first_and_oldest_among_equals(
    store: LeaseStore,
) -> None:
    for item_id, priority in [("a", 0), ("b", 5), ("c", 0), ("d", 5), ("e", -3), ("f", 9)]:
        assert store.push("default", item(item_id, priority))
    assert pop_all(store, ["default"]) == ["f", "b", "d", "a", "c", "e"]


def test_pop_takes_the_best_item_over_several_queues(store: LeaseStore) -> None:
    store.push("gpu", item("g1", 1))
    store.push("default", item("d1", 1))
    store.push("default", item("d2", 7))
    store.push("gpu", item("g2", 1))
    store.push("other", item("o1", 100))
    popped = store.pop(["gpu", "default"], 0)
    assert popped == ("default", item("d2", 7))
    assert pop_all(store, ["default", "gpu", "gpu"]) == ["g1", "d1", "g2"]
    assert store.queued_ids("other") == {"o1"}


def test_push_is_idempotent_per_queue_and_id(store: LeaseStore) -> None:
    assert store.push("default", item("run-1", 1))
    assert not store.push("default", QueueItem("run-1", 9, b"other payload"))
    assert store.push("gpu", item("run-1", 1))
    assert store.pop(["default"], 0) == ("default", item("run-1", 1))
    assert store.pop(["default"], 0) is None


def test_push_many_pushes_in_order_and_says_which_were_new(store: LeaseStore) -> None:
    assert store.push_many([]) == []
    store.push("default", item("run-1", 1))
    added = store.push_many(
        [
            ("default", item("run-1", 1)),  # already there
            ("default", item("run-2", 1)),
            ("gpu", item("run-1", 1)),  # another queue
            ("default", item("run-3", 5)),
            ("default", item("run-2", 9)),  # pushed earlier in this call
        ]
    )
    assert added == [False, True, True, True, False]
    assert pop_all(store, ["default"]) == ["run-3", "run-1", "run-2"]
    assert pop_all(store, ["gpu"]) == ["run-1"]


def test_remove_drops_a_queued_item(store: LeaseStore) -> None:
    store.push("default", item("run-1"))
    store.push("default", item("run-2"))
    assert store.remove("default", "run-1")
    assert not store.remove("default", "run-1")
    assert not store.remove("gpu", "run-2")
    assert pop_all(store, ["default"]) == ["run-2"]


def test_queued_ids_lists_what_waits_in_one_queue(store: LeaseStore) -> None:
    assert store.queued_ids("default") == set()
    for i in range(5):
        store.push("default", item(f"run-{i}"))
    store.push("gpu", item("run-gpu"))
    store.pop(["default"], 0)
    assert store.queued_ids("default") == {f"run-{i}" for i in range(1, 5)}


@pytest.mark.parametrize("implementation", ["adapter", "port-default"])
def test_queue_depths_count_what_waits_in_each_queue_asked_for(
    store: LeaseStore, implementation: str
) -> None:
    depths = (
        store.queue_depths
        if implementation == "adapter"
        else functools.partial(LeaseStore.queue_depths, store)
    )
    for i in range(3):
        store.push("default", item(f"run-{i}"))
    store.push("gpu", item("run-gpu"))
    store.pop(["default"], 0)
    assert depths(["default", "gpu", "empty"]) == {"default": 2, "gpu": 1, "empty": 0}
    assert depths([]) == {}


def test_pop_times_out_with_none_promptly(store: LeaseStore) -> None:
    started = time.monotonic()
    assert store.pop(["default"], 0) is None
    assert time.monotonic() - started < 0.1
    started = time.monotonic()
    assert store.pop(["default"], 0.2) is None
    assert 0.2 <= time.monotonic() - started < 0.4


@pytest.mark.parametrize("same_handle", [True, False], ids=["same-handle", "other-handle"])
def test_waiting_pop_wakes_for_a_push(
    store: LeaseStore, other: LeaseStore, same_handle: bool
) -> None:
    popped: list[tuple[str, QueueItem] | None] = []
    popper = threading.Thread(target=lambda: popped.append(store.pop(["default"], 10)))
    popper.start()
    time.sleep(0.05)  # let the popper start waiting: this test is about its wake-up
    pushed_at = time.monotonic()
    (store if same_handle else other).push("default", item("run-1"))
    popper.join(timeout=10)
    assert popped == [("default", item("run-1"))]
    assert time.monotonic() - pushed_at < 0.5


def _pop_until_stopped(open_shared: Opener, out: Path) -> None:
    store = open_shared()
    popped: list[str] = []
    try:
        while (got := store.pop(["default", "urgent"], 20)) is not None:
            if got[1].id.startswith("stop"):
                break
            popped.append(got[1].id)
    finally:
        store.close()
    out.write_text("\n".join(popped))


def test_processes_popping_concurrently_get_each_item_exactly_once(
    store: LeaseStore, backend: Backend, tmp_path: Path
) -> None:
    processes, items = 3, 600
    outs = [tmp_path / f"popped-{n}.txt" for n in range(processes)]
    poppers = [
        SPAWN.Process(target=_pop_until_stopped, args=(backend.open_shared, out)) for out in outs
    ]
    for popper in poppers:
        popper.start()
    for i in range(items):
        store.push("urgent" if i % 3 == 0 else "default", item(f"run-{i}", priority=i % 2))
    for n in range(processes):
        store.push("default", item(f"stop-{n}", priority=-1))  # popped only after the rest
    _join_all(poppers)
    popped = [line for out in outs for line in out.read_text().split("\n") if line]
    assert sorted(popped) == sorted(f"run-{i}" for i in range(items))
    assert store.queued_ids("default") == store.queued_ids("urgent") == set()


# --- flags -------------------------------------------------------------------------


def test_raised_flags_reads_many_flags_at_once(
    store: LeaseStore, other: LeaseStore, backend: Backend
) -> None:
    assert store.raised_flags([]) == set()
    store.set_flag("finished:a:1", ttl=10)
    store.set_flag("finished:b:1", ttl=30)
    keys = ["finished:a:1", "finished:b:1", "finished:c:1", "finished:a:1"]
    assert other.raised_flags(keys) == {"finished:a:1", "finished:b:1"}
    many = [f"finished:{i}:1" for i in range(1200)]  # more than one chunk
    for key in many[::100]:
        store.set_flag(key, ttl=30)
    assert other.raised_flags(many) == set(many[::100])
    backend.advance(11)
    assert other.raised_flags(keys) == {"finished:b:1"}


def test_flag_is_visible_until_its_ttl_ends(
    store: LeaseStore, other: LeaseStore, backend: Backend
) -> None:
    assert not store.has_flag("cancel:run-1")
    store.set_flag("cancel:run-1", ttl=10)
    assert other.has_flag("cancel:run-1")
    assert not other.has_flag("cancel:run-2")
    backend.advance(9)
    store.set_flag("cancel:run-1", ttl=10)  # raising it again extends it
    backend.advance(9)
    assert other.has_flag("cancel:run-1")
    backend.advance(1.5)
    assert not other.has_flag("cancel:run-1")


# --- ephemeral pub/sub -------------------------------------------------------------


def test_publish_reaches_existing_subscribers_of_other_handles(
    store: LeaseStore, other: LeaseStore
) -> None:
    early = other.subscribe(["output:run-1"])
    store.publish("output:run-1", b"before")
    late = other.subscribe(["output:run-1"])
    store.publish("output:run-1", b"after")
    assert early.get(2) == Message("output:run-1", b"before")
    assert early.get(2) == Message("output:run-1", b"after")
    assert late.get(2) == Message("output:run-1", b"after")
    assert late.get(0) is None
    early.close()
    late.close()


def test_subscription_gets_only_its_channels_in_publish_order(
    store: LeaseStore, other: LeaseStore
) -> None:
    subscription = store.subscribe(["a", "b"])
    for i in range(1500):
        (store if i % 2 else other).publish("abc"[i % 3], str(i).encode())
    got = [subscription.get(2) for _ in range(1000)]
    assert [m.data for m in got if m is not None] == [
        str(i).encode() for i in range(1500) if i % 3 != 2
    ]
    assert {m.channel for m in got if m is not None} == {"a", "b"}
    assert subscription.get(0) is None
    subscription.close()


def test_waiting_subscription_wakes_for_a_publish(store: LeaseStore, other: LeaseStore) -> None:
    subscription = other.subscribe(["workers"])
    got: list[Message | None] = []
    reader = threading.Thread(target=lambda: got.append(subscription.get(10)))
    reader.start()
    time.sleep(0.05)  # let the reader start waiting: this test is about its wake-up
    published_at = time.monotonic()
    store.publish("workers", b"hello")
    reader.join(timeout=10)
    assert got == [Message("workers", b"hello")]
    assert time.monotonic() - published_at < 0.5
    subscription.close()


def test_subscription_get_times_out_with_none(store: LeaseStore) -> None:
    subscription = store.subscribe(["quiet"])
    store.publish("noisy", b"not for us")
    started = time.monotonic()
    assert subscription.get(0.2) is None
    assert 0.2 <= time.monotonic() - started < 0.4
    subscription.close()


def test_closed_subscription_returns_none(store: LeaseStore) -> None:
    subscription = store.subscribe(["workers"])
    store.publish("workers", b"unread")
    subscription.close()
    assert subscription.get(1) is None


def test_async_subscription_gets_what_is_published_after_it_on_its_channels(
    store: LeaseStore, other: LeaseStore
) -> None:
    async def scenario() -> list[Message | None]:
        store.publish("output:run-1", b"before")
        subscription = await other.subscribe_async(["output:run-1"])
        for i in range(3):
            store.publish("output:run-1", str(i).encode())
            store.publish("output:run-2", b"not for us")
        got = [await subscription.get(2) for _ in range(3)]
        got.append(await subscription.get(0.1))
        await subscription.close()
        await subscription.close()  # twice is harmless
        got.append(await subscription.get(1))  # closed: None at once
        return got

    assert asyncio.run(scenario()) == [
        Message("output:run-1", b"0"),
        Message("output:run-1", b"1"),
        Message("output:run-1", b"2"),
        None,
        None,
    ]


def test_async_subscription_waits_without_blocking_the_event_loop(
    store: LeaseStore, other: LeaseStore
) -> None:
    async def scenario() -> tuple[Message | None, int]:
        subscription = await other.subscribe_async(["workers"])
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        waiting = asyncio.create_task(subscription.get(10))
        await asyncio.sleep(0.3)
        store.publish("workers", b"hello")
        message = await waiting
        ticker.cancel()
        await subscription.close()
        return message, ticks

    message, ticks = asyncio.run(scenario())
    assert message == Message("workers", b"hello")
    assert ticks > 5  # the loop went on running other tasks while the subscription waited


# --- SQLite adapter specifics ------------------------------------------------------


def test_sqlite_lock_timeout_is_unavailable_naming_key_and_path(tmp_path: Path) -> None:
    path = tmp_path / "leases.db"
    store = SqliteLeaseStore(path, busy_timeout=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LeaseStoreUnavailable, match=rf"run:1.*{path}") as raised:
            store.acquire("run:1", "worker-a", ttl=10)
        assert raised.value.__cause__ is not None
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        store.close()


def test_sqlite_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SqliteLeaseStore(tmp_path / "leases.db")
    store.close()
    with pytest.raises(LeaseError, match="closed"):
        store.push("default", item("run-1"))


def test_sqlite_tokens_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "leases.db"
    first = SqliteLeaseStore(path)
    lease = first.acquire("run:1", "worker-a", ttl=30)
    first.close()
    second = SqliteLeaseStore(path)
    again = second.acquire("run:2", "worker-a", ttl=30)
    second.close()
    assert lease is not None and again is not None
    assert again.token > lease.token


def test_sqlite_unread_messages_go_after_the_retention(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SqliteLeaseStore(tmp_path / "leases.db", clock=clock)
    subscription = store.subscribe(["output:run-1"])
    store.publish("output:run-1", b"old")
    clock.advance(MESSAGE_RETENTION + 1)
    store.publish("output:run-1", b"new")
    assert subscription.get(1) == Message("output:run-1", b"new")
    store.close()


def _file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_sqlite_a_flooded_channel_keeps_only_its_newest_bytes(tmp_path: Path) -> None:
    store = SqliteLeaseStore(tmp_path / "leases.db")
    cancels = store.subscribe(["cancel"])
    for i in range(100):
        store.publish("cancel", f"run-{i}".encode())
    flooded = store.subscribe(["output:run-1"])
    chunk = b"x" * (64 * 1024)
    for _ in range(50 * 1024 * 1024 // len(chunk)):  # 50 MiB of live output
        store.publish("output:run-1", chunk)
    store.publish("output:run-1", b"last")
    kept = []
    while (message := flooded.get(0)) is not None:
        kept.append(message.data)
    assert kept[-1] == b"last"
    assert 0 < sum(map(len, kept)) <= CHANNEL_BYTES
    # Another channel's small messages are not trimmed by the flood.
    assert [cancels.get(0) for _ in range(100)] == [
        Message("cancel", f"run-{i}".encode()) for i in range(100)
    ]
    assert _file_bytes(tmp_path / "leases.db") < 2 * CHANNEL_BYTES + 2 * WAL_LIMIT
    store.close()


def test_sqlite_the_file_shrinks_once_old_messages_are_pruned(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "leases.db"
    store = SqliteLeaseStore(path, clock=clock)
    for run in range(8):  # 8 runs' worth of retained output: 32 MiB
        for _ in range(CHANNEL_BYTES // (64 * 1024)):
            store.publish(f"output:run-{run}", b"x" * (64 * 1024))
    assert path.stat().st_size > 4 * CHANNEL_BYTES
    clock.advance(MESSAGE_RETENTION + PRUNE_INTERVAL)
    store.publish("output:run-9", b"later")  # a write prunes, then gives pages back
    checkpoint = sqlite3.connect(path)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    assert path.stat().st_size < 1024 * 1024
    store.close()


def test_sqlite_a_file_without_incremental_vacuum_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "leases.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE leftover (x)")  # a store file made before this setting
    old.close()
    SqliteLeaseStore(path).close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    check.close()


def _format_1_file(path: Path, lease_expires_at: float) -> None:
    """A lease store file as the build before ``renewed_at`` left it, with one live lease."""
    old = sqlite3.connect(path)
    old.executescript(
        """
        PRAGMA auto_vacuum=INCREMENTAL;
        CREATE TABLE store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO store_meta VALUES ('format', '1');
        CREATE TABLE token_counter (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL);
        INSERT INTO token_counter VALUES (0, 7);
        CREATE TABLE leases (
            key TEXT PRIMARY KEY, owner TEXT NOT NULL, token INTEGER NOT NULL,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID;
        """
    )
    old.execute("INSERT INTO leases VALUES ('worker:w1', 'w1', 7, ?)", (lease_expires_at,))
    old.commit()
    old.close()


def test_sqlite_a_format_1_file_is_migrated_in_place_and_keeps_its_leases(
    tmp_path: Path,
) -> None:
    path = tmp_path / "leases.db"
    clock = FakeClock()
    _format_1_file(path, clock.now + 30)
    store = SqliteLeaseStore(path, clock=clock)
    held = store.inspect(["worker:w1"])["worker:w1"]
    assert (held.owner, held.token, held.renewed_at) == ("w1", 7, None)  # not recorded then
    clock.advance(5)
    assert store.renew("worker:w1", 7, ttl=30)  # the fencing token still holds
    assert store.inspect(["worker:w1"])["worker:w1"].renewed_at == clock.now
    taken = store.acquire("run:1", "w1", ttl=30)
    assert taken is not None and taken.token == 8 and taken.renewed_at == clock.now
    store.close()
    SqliteLeaseStore(path, clock=clock).close()  # opening again is a no-op
    check = sqlite3.connect(path)
    columns = [row[1] for row in check.execute("PRAGMA table_info(leases)")]
    found = check.execute("SELECT value FROM store_meta WHERE name = 'format'").fetchone()[0]
    check.close()
    assert columns.count("renewed_at") == 1
    assert found == FORMAT_VERSION


def test_sqlite_a_file_of_an_unknown_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "leases.db"
    SqliteLeaseStore(path).close()
    newer = sqlite3.connect(path)
    newer.execute("UPDATE store_meta SET value = '99' WHERE name = 'format'")
    newer.commit()
    newer.close()
    with pytest.raises(LeaseError, match="format '99'"):
        SqliteLeaseStore(path)


# --- Redis adapter specifics -------------------------------------------------------


@pytest.fixture
def redis_store(redis_url: str, redis_prefix: str) -> Iterator[RedisLeaseStore]:
    store = RedisLeaseStore(redis_url, prefix=redis_prefix)
    yield store
    store.close()


@pytest.fixture
def redis_admin(redis_url: str) -> Iterator[redis.Redis]:
    admin = redis.Redis.from_url(redis_url)
    yield admin
    admin.close()


def test_redis_token_floor_restores_fencing_after_data_loss(
    redis_store: RedisLeaseStore, redis_admin: redis.Redis, redis_prefix: str
) -> None:
    before = [redis_store.acquire(f"run:{i}", "worker-a", ttl=30) for i in range(5)]
    highest = max(lease.token for lease in before if lease is not None)
    # What FLUSHALL, or a restart without persistence, does to this store (other keys
    # on a shared server are left alone); the script cache goes too.
    assert delete_keys(redis_admin, redis_prefix) > 0
    redis_admin.script_flush()
    repeated = redis_store.acquire("run:0", "worker-b", ttl=30)
    assert repeated is not None and repeated.token <= highest, "the counter was lost"
    redis_store.ensure_token_floor(highest)
    fenced = redis_store.acquire("run:1", "worker-b", ttl=30)
    assert fenced is not None and fenced.token > highest


def test_redis_tokens_above_float_precision_stay_exact(redis_store: RedisLeaseStore) -> None:
    floor = 2**53 - 10
    redis_store.ensure_token_floor(floor)
    lease = redis_store.acquire("run:1", "worker-a", ttl=30)
    assert lease is not None and lease.token == floor + 1
    assert redis_store.renew("run:1", lease.token, ttl=30)
    assert redis_store.inspect(["run:1"])["run:1"].token == floor + 1
    with pytest.raises(ValueError, match=r"2\*\*53"):
        redis_store.ensure_token_floor(2**53)


def test_redis_a_lease_taken_before_renewed_at_was_recorded_still_counts(
    redis_store: RedisLeaseStore, redis_admin: redis.Redis, redis_prefix: str
) -> None:
    lease = redis_store.acquire("worker:w1", "w1", ttl=30)
    assert lease is not None
    key = f"{redis_prefix}{{leases}}:lease:worker:w1"
    assert redis_admin.hdel(key, "renewed") == 1  # as the build before renewed_at wrote it
    held = redis_store.inspect(["worker:w1"])["worker:w1"]
    assert (held.token, held.expires_at, held.renewed_at) == (lease.token, lease.expires_at, None)
    assert redis_store.renew("worker:w1", lease.token, ttl=30)
    renewed_at = redis_store.inspect(["worker:w1"])["worker:w1"].renewed_at
    assert lease.renewed_at is not None and renewed_at is not None
    assert renewed_at >= lease.renewed_at


def test_redis_queues_order_the_whole_64_bit_priority_range(
    redis_store: RedisLeaseStore,
) -> None:
    priorities = [0, -(2**63), 2**63 - 1, 2**53 + 1, 2**53, -1, 1]
    for n, priority in enumerate(priorities):
        redis_store.push("default", item(f"run-{n}", priority))
    popped = [redis_store.pop(["default"], 0) for _ in priorities]
    assert [got[1].priority for got in popped if got is not None] == sorted(
        priorities, reverse=True
    )
    with pytest.raises(ValueError, match="run-big"):
        redis_store.push("default", item("run-big", 2**63))


def test_redis_keys_sit_under_the_prefix_in_one_cluster_slot(
    redis_store: RedisLeaseStore, redis_admin: redis.Redis, redis_prefix: str
) -> None:
    redis_store.acquire("run:1", "worker-a", ttl=30)
    redis_store.push("default", item("run-1"))
    redis_store.push("gpu", item("run-2"))
    redis_store.set_flag("cancel:run-1", ttl=30)
    keys = [key.decode() for key in redis_admin.scan_iter(match=f"{redis_prefix}*")]
    assert {key.removeprefix(f"{redis_prefix}{{leases}}:") for key in keys} == {
        "lease:run:1",
        "tokens",
        "queue:default",
        "items:default",
        "queue:gpu",
        "items:gpu",
        "sequence",
        "flag:cancel:run-1",
    }
    assert len({key_slot(key.encode()) for key in keys}) == 1


def test_redis_prefix_may_bring_its_own_hash_tag_but_not_stray_braces(
    redis_url: str, redis_prefix: str, redis_admin: redis.Redis
) -> None:
    store = RedisLeaseStore(redis_url, prefix=f"{redis_prefix}{{shard-3}}:")
    try:
        store.set_flag("cancel:run-1", ttl=30)
    finally:
        store.close()
    assert redis_admin.exists(f"{redis_prefix}{{shard-3}}:flag:cancel:run-1") == 1
    for prefix in ["chronolog:{}:", "chronolog:{shard", "chronolog}:"]:
        with pytest.raises(ValueError, match="hash tag"):
            RedisLeaseStore(redis_url, prefix=prefix)


def test_redis_unreachable_server_is_unavailable_naming_it() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(LeaseStoreUnavailable, match=rf"127\.0\.0\.1:{port}") as raised:
        RedisLeaseStore(f"redis://:secret@127.0.0.1:{port}/0", socket_timeout=0.5)
    assert raised.value.__cause__ is not None
    assert "secret" not in str(raised.value)


def test_redis_stalled_server_is_unavailable_naming_the_key_then_recovers(
    redis_url: str, redis_prefix: str, redis_admin: redis.Redis
) -> None:
    store = RedisLeaseStore(redis_url, prefix=redis_prefix, socket_timeout=0.2)
    try:
        redis_admin.client_pause(2000, all=False)  # write commands (and scripts) wait
        try:
            with pytest.raises(LeaseStoreUnavailable, match=r"run:1.*redis://") as raised:
                store.acquire("run:1", "worker-a", ttl=30)
            assert isinstance(raised.value.__cause__, redis.TimeoutError)
        finally:
            redis_admin.client_unpause()
        assert store.acquire("run:1", "worker-a", ttl=30) is not None
    finally:
        store.close()


def test_redis_closed_store_refuses_work(redis_store: RedisLeaseStore) -> None:
    subscription = redis_store.subscribe(["workers"])
    redis_store.close()
    with pytest.raises(LeaseError, match="closed"):
        redis_store.push("default", item("run-1"))
    assert subscription.get(0.1) is None
