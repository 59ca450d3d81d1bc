"""Redis lease store: leases with fencing tokens, priority dispatch queues, flags and
pub/sub on one Redis server, shared by any number of processes on any number of machines.

Atomicity: every step that reads and then writes (take a lease and draw its token, renew,
release, push, pop over several queues, remove, raise the token floor) is one Lua script
from ``leases/lua/``, loaded at start-up. Redis runs a script with nothing interleaved.

Time: expiry is Redis's own (``PEXPIREAT``, ``SET PX``) on the server's clock, so clients
whose clocks disagree still agree on who holds a lease; ``Lease.expires_at`` is the
server's ``TIME`` plus the ttl, kept with the lease so ``inspect`` reports the same value;
``Lease.renewed_at`` is that ``TIME`` (of the acquire or the last renewal), kept likewise.

Keys: every key and channel starts with ``prefix`` followed by one Redis Cluster hash tag,
``{leases}`` unless the prefix brings its own (``chronolog:{leases}:lease:run:42``).
Cluster runs a script only if all its keys hash to one slot: a lease step needs the lease
and the global token counter, a pop all its queues and the sequence counter, and the tag
puts them in one slot. To spread load over shards, give each scheduler shard its own
store with its own tag in the prefix (``chronolog:{shard-3}:``).

Waiting: a ``pop`` that finds nothing subscribes to the wake-up channels of its queues
(``push`` publishes on them inside its script), looks again, then sleeps on the
subscription until a push, looking anyway every ``WAKE_RECHECK`` s in case a notice was
lost with a connection. Pub/sub rather than polling, so idle workers cost Redis nothing;
rather than ``BLPOP``, whose timeout fires only on the server's cron tick (100 ms at the
default ``hz 10``), so ``pop(..., 0.2)`` would return after up to 0.3 s.
"""

from __future__ import annotations

import math
import operator
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aredis
from redis import exceptions as redis_errors
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.commands.core import Script
from redis.retry import Retry

from leases.dispatch import FINISHED_FLAG_PREFIX, cancel_flag, run_lease_key
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

_T = TypeVar("_T")

WAKE_RECHECK: Final = 0.5
"""Seconds a waiting ``pop`` sleeps on its subscription before looking at the queues anyway."""
DEFAULT_TAG: Final = "{leases}"
TOKEN_LIMIT: Final = 2**53
"""Tokens (and the token floor) stay exact below this: Lua numbers are doubles."""

_CHUNK: Final = 500  # keys per inspect script call: bounds how long one script runs
_ORDER_LENGTH: Final = 32  # rank (16 hex digits) + sequence (16 hex digits), see push.lua
_MAX_PRIORITY: Final = 2**63 - 1
_MIN_PRIORITY: Final = -(2**63)

# A failover in progress (a replica that is read-only, a server loading its data) is as
# much "try again later" as a lost connection.
_UNAVAILABLE: Final = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
)


@dataclass(frozen=True, slots=True)
class _Keys:
    """Key and channel names: all under one namespace that carries the hash tag."""

    namespace: str

    @property
    def tokens(self) -> str:
        return f"{self.namespace}tokens"

    @property
    def sequence(self) -> str:
        return f"{self.namespace}sequence"

    def lease(self, key: str) -> str:
        return f"{self.namespace}lease:{key}"

    def order(self, queue: str) -> str:
        return f"{self.namespace}queue:{queue}"

    def items(self, queue: str) -> str:
        return f"{self.namespace}items:{queue}"

    def wake(self, queue: str) -> str:
        return f"{self.namespace}wake:{queue}"

    def flag(self, key: str) -> str:
        return f"{self.namespace}flag:{key}"

    def channel(self, name: str) -> str:
        return f"{self.namespace}channel:{name}"


@dataclass(frozen=True, slots=True)
class _Scripts:
    """The Lua scripts of ``leases/lua/``, one per field (``acquire`` = ``acquire.lua``)."""

    acquire: Script
    renew: Script
    release: Script
    inspect: Script
    token_floor: Script
    push: Script
    pop: Script
    remove: Script
    finish_run: Script
    renew_many: Script
    take_runs: Script

    @classmethod
    def load(cls, client: redis.Redis) -> _Scripts:
        """Read the files and load them into Redis, so a broken script fails at start-up.

        ``Script`` calls ``EVALSHA`` and reloads the text if Redis lost it (a restart).
        """
        scripts = {field.name: client.register_script(_lua(field.name)) for field in fields(cls)}
        for script in scripts.values():
            client.script_load(script.script)
        return cls(**scripts)


class RedisLeaseStore(LeaseStore):
    """The ``LeaseStore`` port on Redis (5 or newer; tested on 7.0).

    Steps are never retried by the client: a connection lost in the middle of a step may
    or may not have applied it (a pop may have taken an item), and only the caller knows
    whether repeating it is safe. It gets ``LeaseStoreUnavailable``.

    Args:
        url: ``redis://[[user]:password@]host:port/db``, ``rediss://…`` or ``unix://…``.
        prefix: the start of every key and channel name; may carry its own hash tag.
        socket_timeout: seconds to wait for a connection or a reply before
            ``LeaseStoreUnavailable``.
    """

    def __init__(
        self, url: str, *, prefix: str = "chronolog:", socket_timeout: float = 5.0
    ) -> None:
        self._where = _redact(url)
        self._url = url
        self._prefix = prefix
        self._keys = _Keys(_namespace(prefix))
        self._socket_timeout = socket_timeout
        self._closed = False
        self._local = threading.local()
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
        )
        try:
            with self._translating("loading the Lua scripts"):
                self._scripts = _Scripts.load(self._client)
        except BaseException:
            self._client.close()
            raise

    def __repr__(self) -> str:
        return f"RedisLeaseStore({self._where!r}, prefix={self._prefix!r})"

    @property
    def closed(self) -> bool:
        return self._closed

    # --- leases ----------------------------------------------------------------------

    def acquire(self, key: str, owner: str, ttl: float) -> Lease | None:
        ttl_ms = _ttl_ms(ttl, f"lease {key!r}")
        reply = self._run(
            self._scripts.acquire,
            f"acquire of lease {key!r} by {owner!r}",
            [self._keys.lease(key), self._keys.tokens],
            [owner, ttl_ms],
        )
        if reply is None:
            return None
        token, expires_ms, renewed_ms = reply
        return Lease(key, owner, int(token), int(expires_ms) / 1000, int(renewed_ms) / 1000)

    def renew(self, key: str, token: int, ttl: float) -> bool:
        ttl_ms = _ttl_ms(ttl, f"lease {key!r}")
        what = f"renewal of lease {key!r} (token {token})"
        reply = self._run(self._scripts.renew, what, [self._keys.lease(key)], [token, ttl_ms])
        return reply is not None

    def renew_many(self, leases: Sequence[tuple[str, int]], ttl: float) -> list[bool]:
        ttl_ms = _ttl_ms(ttl, f"{len(leases)} leases")
        results: list[bool] = []
        for start in range(0, len(leases), _CHUNK):
            chunk = leases[start : start + _CHUNK]
            keys = [self._keys.lease(key) for key, _ in chunk]
            what = f"renewal of {len(chunk)} leases from {chunk[0][0]!r}"
            reply = self._run(
                self._scripts.renew_many, what, keys, [ttl_ms, *(t for _, t in chunk)]
            )
            results.extend(_succeeded(one) for one in reply)
        return results

    def take_runs(
        self, queues: Sequence[str], owner: str, ttl: float, limit: int, timeout: float
    ) -> list[TakenItem]:
        ttl_ms = _ttl_ms(ttl, f"run leases of {owner!r}")
        names = tuple(dict.fromkeys(queues))
        if not names or limit < 1 or timeout < 0:
            raise ValueError(
                "take_runs needs queues, a limit >= 1 and a timeout >= 0,"
                f" got {queues!r}, {limit}, {timeout}"
            )

        def attempt() -> list[TakenItem] | None:
            return self._try_take(names, owner, ttl_ms, limit) or None

        taken = attempt()
        if taken is None and timeout > 0:
            taken = self._wait_and_pop(names, time.monotonic() + timeout, attempt)
        return taken or []

    def finish_runs(self, ends: Sequence[RunEnd], flag_ttl: float) -> list[bool]:
        ttl_ms = _ttl_ms(flag_ttl, "finished flags")
        if not ends:
            return []
        # One pipelined round trip of the finish_run and release scripts.
        with self._translating(f"ending {len(ends)} run leases from {ends[0].key!r}"):
            pipe = self._client.pipeline(transaction=False)
            for end in ends:
                lease = self._keys.lease(end.key)
                if end.finished_flag is None:
                    self._scripts.release(keys=[lease], args=[end.token], client=pipe)
                else:
                    flag = self._keys.flag(end.finished_flag)
                    self._scripts.finish_run(
                        keys=[lease, flag], args=[end.token, ttl_ms], client=pipe
                    )
            return [_succeeded(reply) for reply in pipe.execute()]

    def release(self, key: str, token: int) -> bool:
        what = f"release of lease {key!r} (token {token})"
        return _succeeded(self._run(self._scripts.release, what, [self._keys.lease(key)], [token]))

    def inspect(self, keys: Sequence[str]) -> dict[str, Lease]:
        leases: dict[str, Lease] = {}
        unique = list(dict.fromkeys(keys))
        for chunk in (unique[i : i + _CHUNK] for i in range(0, len(unique), _CHUNK)):
            what = f"inspection of {len(chunk)} leases from {chunk[0]!r}"
            reply = self._run(self._scripts.inspect, what, [self._keys.lease(k) for k in chunk])
            leases.update((lease.key, lease) for lease in _leases_of(chunk, reply))
        return leases

    def ensure_token_floor(self, floor: int) -> None:
        floor = operator.index(floor)
        if floor >= TOKEN_LIMIT:
            raise ValueError(f"token floor {floor} is not below 2**53, the Redis store's limit")
        what = f"raising the token floor to {floor}"
        self._run(self._scripts.token_floor, what, [self._keys.tokens], [floor])

    # --- dispatch queues ---------------------------------------------------------------

    def push(self, queue: str, item: QueueItem) -> bool:
        keys = [self._keys.order(queue), self._keys.items(queue), self._keys.sequence]
        args = [item.id, _rank(item), item.payload, self._keys.wake(queue)]
        what = f"push of {item.id!r} to queue {queue!r}"
        return _succeeded(self._run(self._scripts.push, what, keys, args))

    def push_many(self, items: Sequence[tuple[str, QueueItem]]) -> list[bool]:
        if not items:
            return []
        # One pipelined round trip; each push stays one atomic script.
        with self._translating(f"push of {len(items)} items from {items[0][1].id!r}"):
            pipe = self._client.pipeline(transaction=False)
            for queue, item in items:
                keys = [self._keys.order(queue), self._keys.items(queue), self._keys.sequence]
                args: list[str | bytes] = [
                    item.id,
                    _rank(item),
                    item.payload,
                    self._keys.wake(queue),
                ]
                self._scripts.push(keys=keys, args=args, client=pipe)
            replies = pipe.execute()
        return [_succeeded(reply) for reply in replies]

    def pop(self, queues: Sequence[str], timeout: float) -> tuple[str, QueueItem] | None:
        names = tuple(dict.fromkeys(queues))
        if not names or timeout < 0:
            raise ValueError(f"pop needs queues and a timeout >= 0, got {queues!r}, {timeout}")
        popped = self._try_pop(names)
        if popped is not None or timeout == 0:
            return popped
        return self._wait_and_pop(names, time.monotonic() + timeout, lambda: self._try_pop(names))

    def remove(self, queue: str, item_id: str) -> bool:
        keys = [self._keys.order(queue), self._keys.items(queue)]
        what = f"removal of {item_id!r} from queue {queue!r}"
        return _succeeded(self._run(self._scripts.remove, what, keys, [item_id]))

    def queued_ids(self, queue: str) -> set[str]:
        with self._translating(f"listing of queue {queue!r}"):
            ids = self._client.hkeys(self._keys.items(queue))
        return {_text(item_id) for item_id in ids}

    # --- flags -------------------------------------------------------------------------

    def set_flag(self, key: str, ttl: float) -> None:
        ttl_ms = _ttl_ms(ttl, f"flag {key!r}")
        with self._translating(f"raising flag {key!r}"):
            self._client.set(self._keys.flag(key), b"1", px=ttl_ms)

    def has_flag(self, key: str) -> bool:
        with self._translating(f"reading flag {key!r}"):
            return self._client.exists(self._keys.flag(key)) == 1

    def raised_flags(self, keys: Sequence[str]) -> set[str]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return set()
        # One pipelined round trip of EXISTS (a multi-key EXISTS only counts).
        with self._translating(f"reading {len(unique)} flags from {unique[0]!r}"):
            pipe = self._client.pipeline(transaction=False)
            for key in unique:
                pipe.exists(self._keys.flag(key))
            replies = pipe.execute()
        return {key for key, reply in zip(unique, replies, strict=True) if reply == 1}

    # --- ephemeral pub/sub -------------------------------------------------------------

    def publish(self, channel: str, data: bytes) -> None:
        with self._translating(f"publish on channel {channel!r}"):
            self._client.publish(self._keys.channel(channel), data)

    def subscribe(self, channels: Sequence[str]) -> RedisSubscription:
        names = tuple(dict.fromkeys(channels))
        if not names:
            raise ValueError("subscribe needs at least one channel")
        pubsub = PubSub(self._client.connection_pool)
        try:
            with self._translating(f"subscription to channels {names!r}"):
                pubsub.subscribe(*(self._keys.channel(name) for name in names))
                early = _await_confirmation(pubsub, len(names), self._socket_timeout)
        except BaseException:
            pubsub.close()
            raise
        return RedisSubscription(self, pubsub, self._keys.channel(""), early)

    async def subscribe_async(self, channels: Sequence[str]) -> RedisAsyncSubscription:
        """A subscription on its own asyncio connection (closed with it)."""
        names = tuple(dict.fromkeys(channels))
        if not names:
            raise ValueError("subscribe needs at least one channel")
        client = aredis.Redis.from_url(
            self._url,
            socket_timeout=self._socket_timeout,
            socket_connect_timeout=self._socket_timeout,
            decode_responses=False,
        )
        subscription = RedisAsyncSubscription(self, client, self._keys.channel(""))
        try:
            await subscription.start([self._keys.channel(name) for name in names])
        except BaseException:
            await subscription.close()
            raise
        return subscription

    def close(self) -> None:
        """Drop every connection, waiting pops' and subscriptions' too; later calls raise
        ``LeaseError``."""
        self._closed = True
        self._client.connection_pool.disconnect()
        self._client.close()

    # --- used by RedisSubscription ---------------------------------------------------

    @contextmanager
    def _translating(self, what: str) -> Iterator[None]:
        """Turn Redis client errors into lease-store errors naming ``what`` and the server."""
        if self._closed:
            raise self._closed_error()
        try:
            yield
        except _UNAVAILABLE as e:
            if self._closed:
                raise self._closed_error() from e
            raise LeaseStoreUnavailable(f"{what} failed on Redis {self._where}: {e}") from e
        except redis_errors.RedisError as e:
            raise LeaseError(f"{what} failed on Redis {self._where}: {e}") from e

    # --- internals ------------------------------------------------------------------

    def _closed_error(self) -> LeaseError:
        return LeaseError(f"lease store {self!r} is closed")

    def _run(self, script: Script, what: str, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """The raw reply of ``script``, with errors translated."""
        with self._translating(what):
            return script(keys=keys, args=args)

    def _try_pop(self, queues: tuple[str, ...]) -> tuple[str, QueueItem] | None:
        keys = [key for queue in queues for key in self._keys_of_queue(queue)]
        reply = self._run(self._scripts.pop, f"pop from queues {list(queues)!r}", keys)
        if reply is None:
            return None
        number, item_id, stored = reply
        priority = _MAX_PRIORITY - int(stored[:16], 16)
        item = QueueItem(item_id.decode(), priority, stored[_ORDER_LENGTH:])
        return queues[int(number) - 1], item

    def _try_take(
        self, queues: tuple[str, ...], owner: str, ttl_ms: int, limit: int
    ) -> list[TakenItem]:
        keys = [key for queue in queues for key in self._keys_of_queue(queue)]
        args = [
            owner,
            ttl_ms,
            limit,
            self._keys.lease(run_lease_key("")),
            self._keys.flag(FINISHED_FLAG_PREFIX),
            self._keys.flag(cancel_flag("")),
        ]
        what = f"taking runs from queues {list(queues)!r}"
        reply = self._run(self._scripts.take_runs, what, [*keys, self._keys.tokens], args)
        taken: list[TakenItem] = []
        for at in range(0, len(reply), 4):
            number, raw_id, stored, found = reply[at : at + 4]
            item_id = raw_id.decode()
            priority = _MAX_PRIORITY - int(stored[:16], 16)
            item = QueueItem(item_id, priority, stored[_ORDER_LENGTH:])
            taken.append(TakenItem(queues[int(number) - 1], item, _found(item_id, owner, found)))
        return taken

    def _keys_of_queue(self, queue: str) -> tuple[str, str]:
        return self._keys.order(queue), self._keys.items(queue)

    def _wait_and_pop(
        self,
        queues: tuple[str, ...],
        deadline: float,
        look: Callable[[], _T | None],
    ) -> _T | None:
        """``look`` (a pop), waking for pushes on ``queues`` until it finds something or
        ``deadline`` (monotonic seconds) passes."""
        waiter = self._thread_waiter()
        try:
            popped = self._pop_when_woken(waiter, queues, deadline, look)
        except BaseException:
            waiter.reset()  # its connection is in an unknown state: start afresh next time
            raise
        waiter.disarm()
        return popped

    def _pop_when_woken(
        self,
        waiter: _Waiter,
        queues: tuple[str, ...],
        deadline: float,
        look: Callable[[], _T | None],
    ) -> _T | None:
        what = f"waiting on queues {list(queues)!r}"
        with self._translating(what):
            waiter.arm([self._keys.wake(queue) for queue in queues], self._socket_timeout)
        # Subscribed before this look: a push after it will publish to us.
        while (popped := look()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with self._translating(what):
                waiter.wait(min(remaining, WAKE_RECHECK))
        return popped

    def _thread_waiter(self) -> _Waiter:
        """This thread's waiter (pub/sub objects must not be shared between threads)."""
        waiter: _Waiter | None = getattr(self._local, "waiter", None)
        if waiter is None or waiter.pid != os.getpid():
            waiter = _Waiter(self._client)
            self._local.waiter = waiter
        return waiter


class RedisSubscription(Subscription):
    """Messages on some channels, published after ``subscribe`` returned; use from one
    thread at a time. Redis drops the subscriber if it reads far slower than they come
    (``client-output-buffer-limit pubsub``); ``get`` then raises ``LeaseStoreUnavailable``.
    """

    def __init__(
        self, store: RedisLeaseStore, pubsub: PubSub, prefix: str, early: Iterable[Any]
    ) -> None:
        self._store = store
        self._pubsub = pubsub
        self._prefix = prefix
        self._buffer: deque[Message] = deque(self._parse(raw) for raw in early)
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisSubscription({self._store!r}, {sorted(self._pubsub.channels)!r})"

    def get(self, timeout: float) -> Message | None:
        """The next message, waiting up to ``timeout`` s; None then, or once closed."""
        deadline = time.monotonic() + timeout
        while not (self._closed or self._store.closed):
            if self._buffer:
                return self._buffer.popleft()
            remaining = deadline - time.monotonic()
            with self._store._translating(f"reading {self!r}"):
                raw = self._pubsub.get_message(timeout=max(remaining, 0.0))
            if _is_message(raw):
                self._buffer.append(self._parse(raw))
            elif remaining <= 0:
                return None
        return None

    def close(self) -> None:
        self._closed = True
        self._buffer.clear()
        self._pubsub.close()

    def _parse(self, raw: Any) -> Message:
        channel: bytes = raw["channel"]
        return Message(channel.decode()[len(self._prefix) :], raw["data"])


class RedisAsyncSubscription(AsyncSubscription):
    """``RedisSubscription`` on a ``redis.asyncio`` connection: waiting holds no thread."""

    def __init__(self, store: RedisLeaseStore, client: aredis.Redis, prefix: str) -> None:
        self._store = store
        self._client = client
        self._pubsub = client.pubsub()
        self._prefix = prefix
        self._buffer: deque[Message] = deque()
        self._closed = False

    async def start(self, channels: Sequence[str]) -> None:
        """Subscribe, and return once Redis confirmed it: nothing published after is missed."""
        pending = len(channels)
        deadline = time.monotonic() + self._store._socket_timeout
        with self._store._translating(f"subscription to channels {channels!r}"):
            await self._pubsub.subscribe(*channels)
            while pending:
                if time.monotonic() > deadline:
                    raise redis_errors.TimeoutError("no confirmation of the subscription")
                raw = await self._pubsub.get_message(timeout=0.1)
                if raw is not None and raw["type"] == "subscribe":
                    pending -= 1
                elif _is_message(raw):
                    self._buffer.append(self._parse(raw))

    async def get(self, timeout: float) -> Message | None:
        deadline = time.monotonic() + timeout
        while not (self._closed or self._store.closed):
            if self._buffer:
                return self._buffer.popleft()
            remaining = deadline - time.monotonic()
            with self._store._translating("reading an asyncio subscription"):
                raw = await self._pubsub.get_message(timeout=max(remaining, 0.0))
            if _is_message(raw):
                self._buffer.append(self._parse(raw))
            elif remaining <= 0:
                return None
        return None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        try:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        finally:
            await self._client.aclose()

    def _parse(self, raw: Any) -> Message:
        channel: bytes = raw["channel"]
        return Message(channel.decode()[len(self._prefix) :], raw["data"])


class _Waiter:
    """One thread's pub/sub connection for waking a waiting ``pop``.

    It is subscribed only while a pop waits: a worker busy running a job for an hour
    must not have the wake-up notices of every push meanwhile pile up on its connection.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.pid = os.getpid()
        self._pubsub = PubSub(client.connection_pool)

    def arm(self, channels: Sequence[str], timeout: float) -> None:
        """Subscribe, and return once Redis has confirmed it, so no later push is missed."""
        self._pubsub.subscribe(*channels)
        _await_confirmation(self._pubsub, len(channels), timeout)

    def wait(self, timeout: float) -> None:
        """Sleep until a notice arrives or ``timeout`` s pass (any notice may be stale)."""
        self._pubsub.get_message(timeout=timeout)

    def disarm(self) -> None:
        """Unsubscribe without waiting for the confirmation (``arm`` skips it later)."""
        try:
            self._pubsub.unsubscribe()  # type: ignore[no-untyped-call]  # unannotated upstream
        except redis_errors.RedisError:
            # The pop is done and has its result; a broken connection only needs replacing.
            self.reset()

    def reset(self) -> None:
        """Drop the connection; the next ``arm`` opens a new one."""
        self._pubsub.reset()


def _await_confirmation(pubsub: PubSub, count: int, timeout: float) -> list[Any]:
    """Read until Redis has confirmed ``count`` channel subscriptions; returns the
    messages that arrived meanwhile (stale replies of earlier unsubscribes are dropped)."""
    deadline = time.monotonic() + timeout
    early: list[Any] = []
    confirmed = 0
    while confirmed < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise redis_errors.TimeoutError(f"no confirmation of {count} subscriptions")
        raw = pubsub.get_message(timeout=remaining)
        if _is_message(raw):
            early.append(raw)
        elif raw is not None and raw["type"] == "subscribe":
            confirmed += 1
    return early


def _found(item_id: str, owner: str, found: Any) -> Taken:
    """The ``Taken`` of one item in a reply of take_runs.lua."""
    if found == b"finished":
        return Taken(None, finished=True)
    if isinstance(found, bytes):  # held, or unreadable
        return Taken(None)
    token, expires_ms, renewed_ms, cancelled = found
    lease = Lease(
        run_lease_key(item_id), owner, int(token), int(expires_ms) / 1000, int(renewed_ms) / 1000
    )
    return Taken(lease, cancelled=cancelled == 1)


def _succeeded(reply: object) -> bool:
    """A script's 1 (done) or 0 (refused)."""
    return reply == 1


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _is_message(raw: Any) -> bool:
    return raw is not None and raw["type"] == "message"


def _leases_of(chunk: Sequence[str], reply: Sequence[Any]) -> Iterator[Lease]:
    """The leases in a reply of inspect.lua: (key number, owner, token, expiry ms,
    renewal ms or None)..."""
    for at in range(0, len(reply), 5):
        number, owner, token, expires_ms, renewed_ms = reply[at : at + 5]
        key = chunk[int(number) - 1]
        renewed_at = None if renewed_ms is None else int(renewed_ms) / 1000
        yield Lease(key, owner.decode(), int(token), int(expires_ms) / 1000, renewed_at)


def _rank(item: QueueItem) -> str:
    """16 hex digits that sort the higher priority first (see push.lua)."""
    if not _MIN_PRIORITY <= item.priority <= _MAX_PRIORITY:
        raise ValueError(f"priority of {item.id!r} must fit in 64 bits, got {item.priority}")
    return f"{_MAX_PRIORITY - item.priority:016x}"


def _ttl_ms(ttl: float, what: str) -> int:
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"ttl of {what} must be > 0 s and finite, got {ttl}")
    return max(1, math.ceil(ttl * 1000))


def _namespace(prefix: str) -> str:
    """``prefix``, followed by the default hash tag unless it has one (Redis Cluster
    hashes only what is inside the first ``{…}`` of a key)."""
    opening = prefix.find("{")
    if opening == -1 and "}" not in prefix:
        return f"{prefix}{DEFAULT_TAG}:"
    closing = prefix.find("}", opening + 1)
    if opening == -1 or closing <= opening + 1:
        raise ValueError(f"prefix {prefix!r} has braces but no hash tag like '{{shard-1}}'")
    return prefix


def _redact(url: str) -> str:
    """``url`` with its password masked, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


_QUEUE_ORDER_USERS: Final = frozenset({"pop", "take_runs"})  # scripts that pop queues


def _lua(name: str) -> str:
    """A script's text; the queue-popping ones after the queue order they share."""
    folder = resources.files("leases") / "lua"
    text = (folder / f"{name}.lua").read_text(encoding="utf-8")
    if name in _QUEUE_ORDER_USERS:
        text = (folder / "queue_order.lua").read_text(encoding="utf-8") + "\n" + text
    return text
