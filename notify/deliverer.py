"""The hook deliverer: tells each job's hooks of its runs' outcomes, once per hook.

It reads the event index (``projector.hook_reads``): on start every outcome of a job with
hooks within ``recovery_window``, then what each projector commit adds. A delivery is
pending until the log holds a ``HookDelivered`` for it, or a ``HookDeliveryFailed`` that
gives up; every attempt appends one of the two. Nothing else remembers anything, so a
restart resumes exactly where the log says.

Several deliverers may run (one per scheduler process). Each attempt first takes a lease
on the delivery (``hook-delivery:<outcome event id>:<hook>``) and then re-reads the
delivery's events: only the lease holder sends, and it keeps the lease (it is not
released) for ``claim_ttl`` after appending, far longer than the projector takes to index
that event, so no other deliverer can act on a delivery before seeing how it ended.

HTTP runs on an asyncio loop in the deliverer's own thread, with at most ``concurrency``
deliveries in flight, each bounded by ``timeout``; reads, lease calls and appends run on
a few I/O threads (every state change stays on the loop). Nothing here is on a run's
path or in the scheduler's round.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from eventlog.port import EventLog
from events.codec import EventCodec
from events.model import Event, Hook, HookDelivered, HookDeliveryFailed, JobSpec, to_millis
from leases.port import Lease, LeaseStore
from notify import signing
from notify.outcomes import (
    DELIVERY_TYPES,
    OUTCOME_HOOKS,
    Outcome,
    RunContext,
    delivery_id,
    hook_for,
    summary,
)
from notify.pending import HookConfig, Key, Pending
from notify.retry import (
    Answer,
    DeliveryState,
    attempt_payload,
    fold,
)
from notify.sender import post
from projector import hook_reads
from projector.batch import read_checkpoints
from projector.hook_reads import IndexedEvent
from worker.http_executor import USER_AGENT
from worker.secrets import SecretNotFound, Secrets

log = logging.getLogger(__name__)

T = TypeVar("T")
WATCHED = (*OUTCOME_HOOKS, *DELIVERY_TYPES)
# Claims and appends of attempts in flight overlap their round trips (the adapters are
# thread-safe); one thread made a burst of outcomes wait on each other's writes.
IO_THREADS = 4


@dataclass(frozen=True, slots=True)
class Read:
    """One read of the event index, applied on the deliverer's loop."""

    checkpoints: dict[int, int]
    events: list[IndexedEvent]
    specs: dict[str, JobSpec]
    triggers: dict[str, str]
    now: datetime


class HookDeliverer:
    def __init__(
        self,
        config: HookConfig,
        log: EventLog,
        codec: EventCodec,
        engine: Engine,
        *,
        leases: LeaseStore,
        secrets: Secrets,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._log = log
        self._codec = codec
        self._engine = engine
        self._leases = leases
        self._secrets = secrets
        self._clock = clock
        self._jobs = hook_reads.HookedJobs()
        self._cursor: dict[int, int] | None = None  # checkpoints read up to
        self._pending: dict[Key, Pending] = {}
        self._finished: dict[Key, datetime] = {}  # recently ended, so a re-read adds nothing
        self._in_flight: dict[Key, asyncio.Task[None]] = {}
        self._io = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="hooks-io")

    def close(self) -> None:
        """Release the log and lease store connections it was given."""
        self._leases.close()
        self._log.close()

    def run(self, stop: threading.Event) -> None:
        try:
            asyncio.run(self._main(stop))
        finally:
            self._io.shutdown(wait=True)

    async def _main(self, stop: threading.Event) -> None:
        # Every change of state happens on this loop; the I/O threads only read and write.
        while not stop.is_set():
            pause = self.config.poll_interval
            try:
                read = await self._call(self._read, self._cursor)
                if read is not None:
                    self._apply(read)
            except Exception:  # the database, or an event it cannot take: never stop
                log.exception("hook deliverer could not read the event index; retrying")
                pause = max(pause, 1.0)
            self._start_due()
            await asyncio.sleep(pause)
        if self._in_flight:  # let attempts under way end and be recorded
            await asyncio.wait(self._in_flight.values(), timeout=self.config.timeout + 5)

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._io, function, *args)

    # --- reading the log's record ------------------------------------------------------

    def _read(self, cursor: dict[int, int] | None) -> Read | None:
        """What the index holds past ``cursor`` (None: the first read, over the recovery
        window); None when the projector has committed nothing since."""
        now = self._clock()
        with Session(self._engine) as session:
            checkpoints = read_checkpoints(session)  # before the events: nothing slips between
            if checkpoints == cursor:
                return None
            specs = self._jobs.refresh(session)
            if cursor is None:
                since = now - timedelta(seconds=self.config.recovery_window)
                events = hook_reads.events_since(session, specs, WATCHED, since)
            else:
                ranges = {
                    p: (cursor.get(p, 0), end)
                    for p, end in checkpoints.items()
                    if end > cursor.get(p, 0)
                }
                events = hook_reads.events_between(session, specs, WATCHED, ranges)
            outcomes = [e.run_id for e in events if e.type in OUTCOME_HOOKS]
            triggers = hook_reads.run_triggers(session, outcomes)
        return Read(checkpoints, events, specs, triggers, now)

    def _apply(self, read: Read) -> None:
        self._cursor = read.checkpoints
        for event in read.events:
            try:
                self._take(event, read.specs, read.triggers, read.now)
            except (TypeError, ValueError, KeyError):  # one odd event must not hide the rest
                log.exception(
                    "hook deliverer skipped an event it cannot read",
                    extra={"event_id": event.event_id, "run_id": event.run_id},
                )
        self._forget_finished(read.now)

    def _take(
        self,
        event: IndexedEvent,
        specs: dict[str, JobSpec],
        triggers: dict[str, str],
        now: datetime,
    ) -> None:
        hook_name = hook_for(event.type)
        if hook_name is None:
            self._take_delivery(event)
            return
        spec = specs.get(event.job_id)
        hook: Hook | None = getattr(spec, hook_name) if spec is not None else None
        key = (event.event_id, hook_name)
        if hook is None or spec is None or key in self._pending or key in self._finished:
            return
        outcome = Outcome(
            event.event_id,
            event.type,
            event.job_id,
            event.run_id,
            event.attempt,
            event.occurred_at,
            event.payload,
        )
        context = RunContext(spec.name, triggers.get(event.run_id), self.config.api_base_url)
        self._pending[key] = Pending(outcome, hook_name, hook, context, seen_at=now)

    def _take_delivery(self, event: IndexedEvent) -> None:
        payload = _delivery_payload(event)
        key = (payload.outcome_event_id, payload.hook)
        pending = self._pending.get(key)
        if pending is not None:
            pending.state = fold(pending.state, payload, event.occurred_at)
            if pending.state.finished:
                self._finish(pending)

    def _finish(self, pending: Pending) -> None:
        self._pending.pop(pending.key, None)
        self._finished[pending.key] = self._clock()

    def _forget_finished(self, now: datetime) -> None:
        horizon = now - timedelta(seconds=self.config.claim_ttl * 2)
        self._finished = {k: at for k, at in self._finished.items() if at > horizon}

    # --- attempts ------------------------------------------------------------------------

    def _start_due(self) -> None:
        now = self._clock()
        for key, pending in list(self._pending.items()):
            if len(self._in_flight) >= self.config.concurrency:
                return
            if key in self._in_flight or pending.due_at(self.config.retry) > now:
                continue
            task = asyncio.create_task(self._attempt(pending))
            self._in_flight[key] = task
            task.add_done_callback(functools.partial(self._landed, key))

    def _landed(self, key: Key, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(key, None)

    async def _attempt(self, pending: Pending) -> None:
        try:
            lease, recorded = await self._call(
                self._claim, pending.lease_key, pending.lease, pending.outcome.run_id
            )
            if self._claimed(pending, lease, recorded):
                await self._send(pending)
        except Exception:  # recorded nothing: the delivery stays pending, tried again later
            log.exception(
                "hook delivery attempt failed before it was recorded",
                extra=_ids(pending),
            )
            pending.not_before = self._clock() + timedelta(seconds=self.config.timeout)

    def _claim(
        self, key: str, lease: Lease | None, run_id: str
    ) -> tuple[Lease | None, list[IndexedEvent]]:
        """Hold the delivery's lease (renewed if held, else taken, if free); with it,
        what the index holds of the run's deliveries. (None, []) when another holds it."""
        ttl = self.config.claim_ttl
        if lease is None or not self._leases.renew(key, lease.token, ttl):
            lease = self._leases.acquire(key, self.config.node_id, ttl)
            if lease is None:
                return None, []
        with Session(self._engine) as session:
            recorded = hook_reads.events_of_runs(session, [run_id], DELIVERY_TYPES)
        return lease, recorded

    def _claimed(self, pending: Pending, lease: Lease | None, recorded: list[IndexedEvent]) -> bool:
        """Bring ``pending`` up to what the log holds; True when this deliverer holds it
        and the next attempt is due now."""
        pending.lease = lease
        if lease is None:  # another deliverer is at it: look again a little later
            wait = min(self.config.claim_ttl, 5.0)
            pending.not_before = self._clock() + timedelta(seconds=wait)
            return False
        pending.not_before = None
        state = DeliveryState()
        for event in recorded:
            payload = _delivery_payload(event)
            if (payload.outcome_event_id, payload.hook) == pending.key:
                state = fold(state, payload, event.occurred_at)
        if state.finished or state.failures > pending.state.failures:
            pending.state = state
        if pending.state.finished:
            self._finish(pending)
            return False
        return pending.due_at(self.config.retry) <= self._clock()

    async def _send(self, pending: Pending) -> None:
        attempt = pending.state.failures + 1
        body = orjson.dumps(summary(pending.outcome, pending.hook_name, pending.context))
        try:
            headers = self._headers(pending, body)
        except SecretNotFound as e:
            answer = Answer(None, _missing_secret(e.name), 0)
        else:
            answer = await post(
                pending.hook.url,
                body,
                headers,
                allow=self.config.allow,
                timeout=self.config.timeout,
            )
        payload = attempt_payload(
            answer,
            attempt,
            self.config.retry,
            hook=pending.hook_name,
            url=pending.hook.url,
            outcome_event_id=pending.outcome.event_id,
        )
        event = self._event(pending, payload)
        await self._call(self._append, event)
        pending.state = fold(pending.state, payload, event.occurred_at)
        _log_attempt(pending, payload)
        if pending.state.finished:
            self._finish(pending)

    def _headers(self, pending: Pending, body: bytes) -> dict[str, str]:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            signing.DELIVERY_HEADER: delivery_id(*pending.key),
            signing.HOOK_HEADER: pending.hook_name,
            signing.TIMESTAMP_HEADER: str(timestamp),
        }
        if pending.hook.secret is not None:
            secret = self._secrets.get(pending.hook.secret)
            headers[signing.SIGNATURE_HEADER] = signing.signature_header(secret, timestamp, body)
        return headers

    def _event(self, pending: Pending, payload: HookDelivered | HookDeliveryFailed) -> Event:
        outcome = pending.outcome
        return Event(
            payload=payload,
            occurred_at=to_millis(self._clock()),
            actor=self.config.node_id,
            job_id=outcome.job_id,
            run_id=outcome.run_id,
            attempt=outcome.attempt,
            causation_id=outcome.event_id,
        )

    def _append(self, event: Event) -> None:
        self._log.append([(event.key, self._codec.encode(event))])


def _delivery_payload(event: IndexedEvent) -> HookDelivered | HookDeliveryFailed:
    kind = HookDelivered if event.type == "HookDelivered" else HookDeliveryFailed
    known = {f.name for f in dataclasses.fields(kind)}  # a later schema may add fields
    return kind(**{k: v for k, v in event.payload.items() if k in known})


def _missing_secret(name: str) -> str:
    return (
        f"the hook's secret {name!r} is not in the scheduler's secrets file "
        "(CHRONOLOG_SECRETS_FILE) nor its environment; set it and restart the scheduler"
    )


def _ids(pending: Pending) -> dict[str, Any]:
    outcome = pending.outcome
    return {
        "job_id": outcome.job_id,
        "run_id": outcome.run_id,
        "hook": pending.hook_name,
        "outcome_event_id": outcome.event_id,
    }


def _log_attempt(pending: Pending, payload: HookDelivered | HookDeliveryFailed) -> None:
    extra = {**_ids(pending), "attempt": payload.attempt, "status_code": payload.status_code}
    if isinstance(payload, HookDelivered):
        log.info("hook delivered", extra=extra)
    elif payload.will_retry:
        log.warning("hook delivery failed; will retry", extra={**extra, "error": payload.error})
    else:
        log.error("hook delivery failed; giving up", extra={**extra, "error": payload.error})
