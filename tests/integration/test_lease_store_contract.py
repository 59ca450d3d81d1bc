"""The ``LeaseStore`` contract: every adapter must pass these tests.

To add an adapter, add a ``<name>_backend`` fixture returning a ``Backend`` on one fresh,
empty store, and add ``<name>`` to ``ADAPTERS``. ``advance`` may jump a fake clock (exact
and fast) or, for a server that keeps its own time, wait in real time.
"""

from __future__ import annotations

import functools
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from pathlib import Path

import pytest

from leases.errors import LeaseError, LeaseStoreUnavailable
from leases.port import LeaseStore, Message, QueueItem
from leases.sqlite_store import MESSAGE_RETENTION, SqliteLeaseStore

ADAPTERS = ["sqlite"]
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
