"""One worker process: registers, heartbeats, takes runs from its queues and runs them.

A run is taken only with its lease and fencing token; the lease is renewed while the
job runs, and every event the worker appends carries the token, so an outcome from a
worker that lost its lease is rejected by the projection (and recorded as stale).
The worker reports outcomes; the scheduler decides retries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from eventlog.port import EventLog
from events.codec import EventCodec
from events.errors import ChronologError, EventLogError, MalformedEvent
from events.model import (
    Event,
    Payload,
    RunCancelled,
    RunStarted,
    WorkerDeregistered,
    WorkerRegistered,
    to_millis,
)
from leases.dispatch import (
    CANCEL_CHANNEL,
    FINISHED_FLAG_TTL,
    Ticket,
    cancel_flag,
    decode_ticket,
    finished_flag,
    run_lease_key,
    worker_lease_key,
)
from leases.port import Lease, LeaseStore, QueueItem
from worker.execution import ExecutionRequest, ExecutionResult, Executor
from worker.live_output import LiveOutput
from worker.outcomes import outcome_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    worker_id: str
    hostname: str
    pid: int
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 1
    heartbeat_interval: float = 30.0  # seconds between heartbeats
    run_lease_ttl: float = 15.0  # a run whose worker stops renewing is lost after this
    poll_timeout: float = 0.5
    drain_timeout: float = 30.0  # SIGTERM: finish running jobs for this long, then hand back
    append_retry_for: float = 60.0  # keep retrying an append this long before giving up


class Worker:
    def __init__(
        self,
        config: WorkerConfig,
        log: EventLog,
        codec: EventCodec,
        leases: LeaseStore,
        executor: Executor,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._log = log
        self._codec = codec
        self._leases = leases
        self._executor = executor
        self._clock = clock
        self._draining = threading.Event()
        self._handing_back = threading.Event()
        self._running: dict[str, threading.Event] = {}  # run id -> its cancel signal
        self._running_lock = threading.Lock()
        self._heartbeat: Lease | None = None
        self._keeper = LeaseKeeper(leases, config.run_lease_ttl)
        self._live = LiveOutput(leases)

    # --- lifecycle -------------------------------------------------------------------

    def register(self) -> None:
        c = self.config
        self._heartbeat = self._leases.acquire(
            worker_lease_key(c.worker_id), c.worker_id, c.heartbeat_interval * 3
        )
        payload = WorkerRegistered(c.worker_id, c.hostname, c.pid, c.queues, c.concurrency)
        self._append(self._event(payload, job_id=None))
        log.info("worker registered", extra={"worker_id": c.worker_id, "queues": c.queues})

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set, then drain: finish running jobs or hand them back."""
        slots = [
            threading.Thread(target=self._serve, name=f"slot-{i}", daemon=True)
            for i in range(self.config.concurrency)
        ]
        helpers = [
            threading.Thread(target=self._beat, args=(stop,), name="heartbeat", daemon=True),
            threading.Thread(
                target=self._listen_for_cancels, args=(stop,), name="cancels", daemon=True
            ),
            threading.Thread(target=self._keeper.run, args=(stop,), name="leases", daemon=True),
        ]
        for thread in (*slots, *helpers):
            thread.start()
        stop.wait()
        self._draining.set()
        deadline = time.monotonic() + self.config.drain_timeout
        for thread in slots:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in slots):
            self._hand_back()
            for thread in slots:
                thread.join(self.config.drain_timeout)
        self._live.close()
        self._deregister()

    def _deregister(self) -> None:
        c = self.config
        self._append(self._event(WorkerDeregistered(c.worker_id, "shutdown"), job_id=None))
        if self._heartbeat is not None:
            self._leases.release(self._heartbeat.key, self._heartbeat.token)
        log.info("worker deregistered", extra={"worker_id": c.worker_id})

    def _hand_back(self) -> None:
        """Jobs still running after the drain are stopped and reported nothing for: their
        leases are released, so the scheduler finds the runs lost and retries them
        elsewhere. (A cancel outcome would end runs nobody asked to cancel.)"""
        self._handing_back.set()
        with self._running_lock:
            for cancel in self._running.values():
                cancel.set()

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.config.heartbeat_interval):
            try:
                self._renew_heartbeat()
            except ChronologError:
                log.exception(
                    "heartbeat failed; trying again", extra={"worker_id": self.config.worker_id}
                )

    def _renew_heartbeat(self) -> None:
        c = self.config
        ttl = c.heartbeat_interval * 3
        lease = self._heartbeat
        if lease is None or not self._leases.renew(lease.key, lease.token, ttl):
            self._heartbeat = self._leases.acquire(worker_lease_key(c.worker_id), c.worker_id, ttl)

    def _listen_for_cancels(self, stop: threading.Event) -> None:
        """Deliver cancel signals to running jobs; survives lease-store outages (a cancel
        that falls in one is still caught by the flag a worker checks before starting)."""
        while not stop.is_set():
            try:
                self._cancels_until(stop)
            except ChronologError:
                log.exception("cancel listener lost the lease store; resubscribing")
                stop.wait(1.0)

    def _cancels_until(self, stop: threading.Event) -> None:
        subscription = self._leases.subscribe([CANCEL_CHANNEL])
        try:
            while not stop.is_set():
                message = subscription.get(timeout=0.5)
                if message is not None:
                    self._cancel(message.data.decode())
        finally:
            subscription.close()

    def _cancel(self, run_id: str) -> None:
        with self._running_lock:
            cancel = self._running.get(run_id)
        if cancel is not None:
            log.info(
                "cancel signalled", extra={"run_id": run_id, "worker_id": self.config.worker_id}
            )
            cancel.set()

    # --- taking and running runs -----------------------------------------------------

    def _serve(self) -> None:
        while not self._draining.is_set():
            try:
                popped = self._leases.pop(self.config.queues, self.config.poll_timeout)
                if popped is not None:
                    self.take(popped[1])
            except ChronologError:
                log.exception(
                    "could not take a run; carrying on", extra={"worker_id": self.config.worker_id}
                )
                self._draining.wait(1.0)

    def take(self, item: QueueItem) -> None:
        """Run one queue entry if this worker can lease it and it still needs running."""
        try:
            ticket = decode_ticket(item.payload)
        except MalformedEvent:
            log.exception("dropped an unreadable queue entry", extra={"run_id": item.id})
            return
        lease = self._leases.acquire(
            run_lease_key(ticket.run_id), self.config.worker_id, self.config.run_lease_ttl
        )
        if lease is None:
            log.info("run is held by another worker", extra={"run_id": ticket.run_id})
            return
        try:
            self._run_leased(ticket, lease)
        finally:
            self._leases.release(lease.key, lease.token)

    def _run_leased(self, ticket: Ticket, lease: Lease) -> None:
        if self._leases.has_flag(finished_flag(ticket.run_id, ticket.attempt)):
            log.info(
                "attempt already ran; duplicate queue entry dropped",
                extra={"run_id": ticket.run_id},
            )
            return
        if self._leases.has_flag(cancel_flag(ticket.run_id)):
            reason = "cancelled before it started"
            self._append(
                self._run_event(ticket, RunCancelled(reason, self.config.worker_id, lease.token))
            )
            return
        self._append(self._run_event(ticket, RunStarted(self.config.worker_id, lease.token)))
        result, lost = self._execute(ticket, lease)
        if self._handing_back.is_set():
            log.warning("run handed back on shutdown", extra={"run_id": ticket.run_id})
            return
        if lost and result.status == "cancelled":
            # Stopped because the lease could not be renewed: the run is someone else's to
            # retry (the scheduler sees it lost), so this worker reports nothing.
            log.warning("run stopped: its lease was lost", extra={"run_id": ticket.run_id})
            return
        self._append(
            self._run_event(
                ticket, outcome_payload(ticket, result, self.config.worker_id, lease.token)
            )
        )
        self._leases.set_flag(finished_flag(ticket.run_id, ticket.attempt), FINISHED_FLAG_TTL)

    def _execute(self, ticket: Ticket, lease: Lease) -> tuple[ExecutionResult, bool]:
        """Run the job; the result, and whether the lease was lost meanwhile."""
        cancel = threading.Event()
        with self._running_lock:
            self._running[ticket.run_id] = cancel
        self._keeper.hold(lease, on_lost=cancel.set)
        request = ExecutionRequest(
            ticket.run_id,
            ticket.job_id,
            ticket.attempt,
            ticket.spec,
            ticket.parameters,
            on_output=self._live.listener(ticket.run_id),
            scheduled_for=ticket.scheduled_for,
        )
        log.info(
            "run started",
            extra={"run_id": ticket.run_id, "job_id": ticket.job_id, "attempt": ticket.attempt},
        )
        try:
            result = self._executor.execute(request, cancel)
        finally:
            self._live.finish(ticket.run_id)
            lost = self._keeper.drop(lease)
            with self._running_lock:
                self._running.pop(ticket.run_id, None)
        if lost:
            log.warning("run lease lost while running", extra={"run_id": ticket.run_id})
        log.info("run finished", extra={"run_id": ticket.run_id, "status": result.status})
        return result, lost

    # --- events ----------------------------------------------------------------------

    def _run_event(self, ticket: Ticket, payload: Payload) -> Event:
        return Event(
            payload=payload,
            occurred_at=to_millis(self._clock()),
            actor=self.config.worker_id,
            job_id=ticket.job_id,
            run_id=ticket.run_id,
            attempt=ticket.attempt,
            correlation_id=ticket.correlation_id,
        )

    def _event(self, payload: Payload, job_id: str | None) -> Event:
        return Event(
            payload=payload,
            occurred_at=to_millis(self._clock()),
            actor=self.config.worker_id,
            job_id=job_id,
        )

    def _append(self, event: Event) -> None:
        """Append, retrying while the log is unavailable (bounded)."""
        give_up = time.monotonic() + self.config.append_retry_for
        while True:
            try:
                self._log.append([(event.key, self._codec.encode(event))])
                return
            except EventLogError:
                if time.monotonic() > give_up:
                    raise
                log.warning(
                    "append failed; retrying",
                    extra={"run_id": event.run_id, "event_type": event.type},
                )
                time.sleep(0.5)


class LeaseKeeper:
    """Renews every run lease a worker holds, from one thread; a run whose lease cannot be
    kept (the worker was frozen past its TTL, say) is told to stop."""

    def __init__(self, leases: LeaseStore, ttl: float) -> None:
        self._leases = leases
        self._ttl = ttl
        self._held: dict[str, tuple[Lease, Callable[[], None]]] = {}
        self._lost: set[str] = set()
        self._lock = threading.Lock()

    def hold(self, lease: Lease, on_lost: Callable[[], None]) -> None:
        with self._lock:
            self._held[lease.key] = (lease, on_lost)

    def drop(self, lease: Lease) -> bool:
        """Stop renewing ``lease``; True if it had been lost meanwhile."""
        with self._lock:
            self._held.pop(lease.key, None)
            lost = lease.key in self._lost
            self._lost.discard(lease.key)
        return lost

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self._ttl / 3):
            with self._lock:
                held = list(self._held.values())
            for lease, on_lost in held:
                self._renew(lease, on_lost)

    def _renew(self, lease: Lease, on_lost: Callable[[], None]) -> None:
        try:
            kept = self._leases.renew(lease.key, lease.token, self._ttl)
        except ChronologError:
            return  # the store is briefly unavailable; the lease may still be ours
        if not kept:
            with self._lock:
                self._lost.add(lease.key)
                self._held.pop(lease.key, None)
            on_lost()
