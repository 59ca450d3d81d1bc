"""The ``LeaseStore`` port: execution leases with fencing tokens, leader election,
priority dispatch queues, flags, and ephemeral pub/sub.

Everything here is derived, disposable state: losing it loses no run, because the event
log has every fact and the scheduler re-pushes queued runs (reconciliation). Adapters:
``leases.sqlite_store`` (embedded, several local processes) and, later, Redis.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from leases.dispatch import cancel_flag, finished_flag, run_lease_key, ticket_attempt


@dataclass(frozen=True, slots=True)
class Lease:
    key: str
    owner: str
    token: int  # fencing token: strictly greater than every token handed out before
    expires_at: float  # seconds since the epoch, store clock
    # When it was last taken or renewed (store clock): a holder's heartbeat. None only
    # for a lease taken by an older build that did not record it, until its next renewal.
    renewed_at: float | None


@dataclass(frozen=True, slots=True)
class Taken:
    """What taking a run found: its lease (None unless taken), and its flags.

    ``finished``: the attempt already ran (a duplicate queue entry): nothing is taken.
    ``cancelled``: a cancel was asked for before it started (the lease is taken, so the
    taker can report the cancel with its token).
    """

    lease: Lease | None
    finished: bool = False
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class QueueItem:
    id: str  # the run id
    priority: int  # higher first; FIFO among equal priorities
    payload: bytes  # what the worker needs to run it (job snapshot, parameters, attempt)


@dataclass(frozen=True, slots=True)
class TakenItem:
    """One queue entry ``take_runs`` popped, and what taking its run found."""

    queue: str
    item: QueueItem
    taken: Taken


@dataclass(frozen=True, slots=True)
class RunEnd:
    """A run lease to give up: with ``finished_flag`` raised first (the outcome is
    durable), or without (a plain release: the run is someone else's to retry)."""

    key: str
    token: int
    finished_flag: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    data: bytes


class Subscription(ABC):
    @abstractmethod
    def get(self, timeout: float) -> Message | None:
        """The next message published after ``subscribe``; None after ``timeout`` s."""

    @abstractmethod
    def close(self) -> None: ...


class AsyncSubscription(ABC):
    """A subscription for asyncio code: waiting never holds a thread."""

    @abstractmethod
    async def get(self, timeout: float) -> Message | None:
        """The next message published after ``subscribe_async``; None after ``timeout`` s."""

    @abstractmethod
    async def close(self) -> None:
        """Stop receiving; safe to call more than once."""


class LeaseStore(ABC):
    # --- leases ----------------------------------------------------------------------

    @abstractmethod
    def acquire(self, key: str, owner: str, ttl: float) -> Lease | None:
        """Take ``key`` for ``ttl`` s with a new fencing token, unless another live lease holds it.

        Re-acquiring one's own live lease also gives a new, higher token.
        """

    @abstractmethod
    def renew(self, key: str, token: int, ttl: float) -> bool:
        """Extend the lease with ``token`` to ``ttl`` s from now and record now as its
        ``renewed_at``; False if it is lost."""

    @abstractmethod
    def release(self, key: str, token: int) -> bool:
        """Give the lease up; False if it was no longer held with ``token``."""

    @abstractmethod
    def inspect(self, keys: Sequence[str]) -> dict[str, Lease]:
        """The live leases among ``keys`` (expired ones are absent)."""

    def renew_many(self, leases: Sequence[tuple[str, int]], ttl: float) -> list[bool]:
        """``renew`` of every (key, token), in one round trip where the adapter can; one
        result per lease, in order: a lost lease fails alone."""
        return [self.renew(key, token, ttl) for key, token in leases]

    def take_runs(
        self, queues: Sequence[str], owner: str, ttl: float, limit: int, timeout: float
    ) -> list[TakenItem]:
        """Pop up to ``limit`` items of ``queues`` (as ``pop``: priority, then FIFO),
        waiting up to ``timeout`` s for the first, and take the run of each: nothing if its
        attempt's finished flag is up (``finished``) or ANY live lease holds it (so an
        owner never re-takes, with a new token, an attempt it already holds: a duplicate
        entry); else its lease with a new token and its cancel flag. Items are dispatch
        tickets (``leases.dispatch``); one whose attempt cannot be read takes nothing.

        One round trip (Redis) or transaction (SQLite) in the adapters. This default,
        made of the other steps, is not atomic: between its ``inspect`` and its
        ``acquire`` the same owner could take the lease elsewhere.
        """
        _check_take(queues, limit, timeout)
        taken: list[TakenItem] = []
        popped = self.pop(queues, timeout)
        while popped is not None:
            queue, item = popped
            taken.append(TakenItem(queue, item, self._take_item(item, owner, ttl)))
            if len(taken) >= limit:
                break
            popped = self.pop(queues, 0)
        return taken

    def _take_item(self, item: QueueItem, owner: str, ttl: float) -> Taken:
        attempt = ticket_attempt(item.payload)
        if attempt is None:
            return Taken(None)
        if self.has_flag(finished_flag(item.id, attempt)):
            return Taken(None, finished=True)
        key = run_lease_key(item.id)
        if self.inspect([key]):
            return Taken(None)
        lease = self.acquire(key, owner, ttl)
        if lease is None:
            return Taken(None)
        return Taken(lease, cancelled=self.has_flag(cancel_flag(item.id)))

    def finish_runs(self, ends: Sequence[RunEnd], flag_ttl: float) -> list[bool]:
        """For each end in order: raise its attempt's finished flag if it has one, then
        ``release`` its lease, in one round trip where the adapter can; one release
        result per end (a lost lease still gets its flag, and releases nothing)."""
        released: list[bool] = []
        for end in ends:
            if end.finished_flag is not None:
                self.set_flag(end.finished_flag, flag_ttl)
            released.append(self.release(end.key, end.token))
        return released

    @abstractmethod
    def ensure_token_floor(self, floor: int) -> None:
        """Make every future token greater than ``floor`` (re-seeding after data loss)."""

    # --- dispatch queues ---------------------------------------------------------------

    @abstractmethod
    def push(self, queue: str, item: QueueItem) -> bool:
        """Add ``item`` to ``queue``; False (and no change) if its id is already there."""

    @abstractmethod
    def push_many(self, items: Sequence[tuple[str, QueueItem]]) -> list[bool]:
        """``push`` each (queue, item) in order, in one round trip or transaction; for
        each, whether it was added (False: its id was already in that queue)."""

    @abstractmethod
    def pop(self, queues: Sequence[str], timeout: float) -> tuple[str, QueueItem] | None:
        """Remove and return the highest-priority item of any of ``queues`` (oldest first
        among equals), waiting up to ``timeout`` s; None if all stay empty."""

    @abstractmethod
    def remove(self, queue: str, item_id: str) -> bool:
        """Drop an item (a cancelled queued run); False if it was not there."""

    @abstractmethod
    def queued_ids(self, queue: str) -> set[str]:
        """Ids waiting in ``queue`` (for reconciliation)."""

    # --- flags -------------------------------------------------------------------------

    @abstractmethod
    def set_flag(self, key: str, ttl: float) -> None:
        """Raise a flag that expires after ``ttl`` s (e.g. ``cancel:<run id>``)."""

    @abstractmethod
    def has_flag(self, key: str) -> bool: ...

    def raised_flags(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` whose flag is raised: ``has_flag`` for many keys, in one
        round trip where the adapter can."""
        return {key for key in keys if self.has_flag(key)}

    # --- ephemeral pub/sub -------------------------------------------------------------

    @abstractmethod
    def publish(self, channel: str, data: bytes) -> None:
        """Deliver to current subscribers of ``channel``; nobody listening = dropped."""

    @abstractmethod
    def subscribe(self, channels: Sequence[str]) -> Subscription: ...

    @abstractmethod
    async def subscribe_async(self, channels: Sequence[str]) -> AsyncSubscription:
        """``subscribe`` for asyncio code (the API's live-output streams)."""

    def close(self) -> None:  # noqa: B027 - optional hook for adapters holding resources
        """Release connections held by the adapter."""


def _check_take(queues: Sequence[str], limit: int, timeout: float) -> None:
    if not queues or limit < 1 or timeout < 0:
        raise ValueError(
            f"take_runs needs queues, a limit >= 1 and a timeout >= 0,"
            f" got {queues!r}, {limit}, {timeout}"
        )
