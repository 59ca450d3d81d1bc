"""One worker process: registers, heartbeats, takes runs from its queues and runs them.

A run is taken only with its lease and fencing token; the lease is renewed while the
job runs, and every event the worker appends carries the token, so an outcome from a
worker that lost its lease is rejected by the projection (and recorded as stale).
The worker reports outcomes; the scheduler decides retries.

Structure: one asyncio event loop drives every run. One taking loop asks the store for
as many runs as there are free slots (``LeaseStore.take_runs``: pop the entries and take
their leases, one round trip), and starts a coroutine per run taken (append the start,
await the executor, append the outcome, end the lease), not a thread, so
``concurrency`` (running runs per worker) can be thousands: async python jobs wait on
the async pool's socket, other jobs on a thread of the loop's default executor (made
only while such a job runs). Appends and lease ends are group-committed
(``worker.appender``, ``worker.finisher``) on two I/O threads; every held run lease is
renewed by one ``renew_many`` per period (``LeaseKeeper``). The heartbeat, the cancel
listener and the lease keeper stay threads of their own: a busy loop must not delay them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from chronolog import tracing
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
    decode_ticket,
    finished_flag,
    worker_lease_key,
)
from leases.port import Lease, LeaseStore, RunEnd, TakenItem
from metrics.hooks import NO_METRICS, Metrics
from worker.appender import Appender
from worker.execution import ExecutionRequest, Executor, RunCancel
from worker.finisher import Finisher
from worker.live_output import LiveOutput
from worker.outcomes import outcome_payload

log = logging.getLogger(__name__)

IO_THREADS: Final = 2  # threads for the loop's batched log appends and lease ends
MAX_TAKE: Final = 256  # runs taken per take_runs call: bounds one lease-store step
HELPER_STOP_TIMEOUT: Final = 5.0  # s a helper thread gets to see the stop, once the loop is done


def _give_back(release: Callable[[], None], _: object) -> None:
    release()


class Slots:
    """How many more runs this worker may take: ``concurrency`` less the runs it holds.

    A run holds its slot from its take until its job has run. The append of its outcome
    and the end of its lease follow without it, so the next run is taken meanwhile and
    its start can go to the log in the same append as the last one's outcome (one
    group commit for both instead of one each). At most ``concurrency`` jobs run at once.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._held = 0
        self._released = asyncio.Event()

    @property
    def free(self) -> int:
        return self._size - self._held

    def hold(self) -> Callable[[], None]:
        """Take a slot; the function gives it back (once, however often it is called)."""
        self._held += 1
        given_back = False

        def release() -> None:
            nonlocal given_back
            if not given_back:
                given_back = True
                self._held -= 1
                self._released.set()

        return release

    async def wait_for_one(self) -> None:
        """Return once a slot was given back since the last wait."""
        await self._released.wait()
        self._released.clear()


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    worker_id: str
    hostname: str
    pid: int
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 1  # runs running at once in this worker
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
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.config = config
        self._metrics = metrics
        self._log = log
        self._codec = codec
        self._leases = leases
        self._executor = executor
        self._clock = clock
        self._handing_back = threading.Event()
        self._running: dict[str, RunCancel] = {}  # run id -> its cancel signal
        self._running_lock = threading.Lock()
        self._heartbeat: Lease | None = None
        self._keeper = LeaseKeeper(leases, config.run_lease_ttl)
        self._live = LiveOutput(leases)
        self._io = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="worker-io")
        self._appender: Appender | None = None
        self._finisher: Finisher | None = None
        # Attempts this worker holds, until their lease is given up: a duplicate queue
        # entry must not run the attempt again (take_runs already refuses a held lease;
        # this guards against a store whose take_runs is not atomic).
        self._holding: set[tuple[str, int]] = set()
        self._ending: set[asyncio.Task[None]] = set()  # lease ends of dropped entries

    # --- lifecycle -------------------------------------------------------------------

    def register(self) -> None:
        c = self.config
        self._heartbeat = self._leases.acquire(
            worker_lease_key(c.worker_id), c.worker_id, c.heartbeat_interval * 3
        )
        payload = WorkerRegistered(c.worker_id, c.hostname, c.pid, c.queues, c.concurrency)
        self._append(self._event(payload, job_id=None))
        self._metrics.worker_started(c.concurrency)
        log.info("worker registered", extra={"worker_id": c.worker_id, "queues": c.queues})

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set, then drain: finish running jobs or hand them back."""
        served = threading.Event()  # the loop is done: no lease left to renew
        helpers = [
            threading.Thread(target=self._beat, args=(stop,), name="heartbeat", daemon=True),
            threading.Thread(
                target=self._listen_for_cancels, args=(stop,), name="cancels", daemon=True
            ),
            threading.Thread(target=self._keeper.run, args=(served,), name="leases", daemon=True),
        ]
        for thread in helpers:
            thread.start()
        try:
            asyncio.run(self._serve(stop))
        finally:
            served.set()
            self._io.shutdown(wait=True)
            # The caller closes the lease store once this returns: its users must be done.
            stop.set()
            for thread in helpers:
                thread.join(timeout=HELPER_STOP_TIMEOUT)
                if thread.is_alive():  # stuck on an unreachable store, say: go on without it
                    log.warning("worker thread did not stop", extra={"thread": thread.name})
        self._live.close()
        self._deregister()

    async def _serve(self, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        jobs = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="job")
        loop.set_default_executor(jobs)  # sync executors' threads, one per such running run
        appender = self._appender = Appender(
            self._log, self._codec, self._io, self.config.append_retry_for
        )
        finisher = self._finisher = Finisher(self._leases, self._io, FINISHED_FLAG_TTL)
        writers = [loop.create_task(appender.run()), loop.create_task(finisher.run())]
        runs: set[asyncio.Task[None]] = set()
        await self._take_runs(stop, runs)
        await self._drain(runs)
        if self._ending:
            await asyncio.wait(self._ending)
        await appender.close()
        await finisher.close()
        await asyncio.gather(*writers)
        await self._executor.aclose()
        log.info(
            "appends and lease ends group-committed",
            extra={
                "events": appender.appended,
                "batches": appender.batches,
                "ends": finisher.ended,
                "end_batches": finisher.batches,
            },
        )

    async def _drain(self, runs: set[asyncio.Task[None]]) -> None:
        if not runs:
            return
        _, late = await asyncio.wait(set(runs), timeout=self.config.drain_timeout)
        if late:
            self._hand_back()
            await asyncio.wait(late, timeout=self.config.drain_timeout)

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
            cancels = list(self._running.values())
        for cancel in cancels:
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

    async def _take_runs(self, stop: threading.Event, runs: set[asyncio.Task[None]]) -> None:
        """One taking loop: ask for as many runs as there are free slots, start a
        coroutine per run taken, until ``stop``. The wait for work holds one thread."""
        loop = asyncio.get_running_loop()
        c = self.config
        slots = Slots(c.concurrency)
        with ThreadPoolExecutor(1, thread_name_prefix="take") as taking:
            while not stop.is_set():
                free = min(slots.free, MAX_TAKE)
                if free <= 0:
                    await slots.wait_for_one()
                    continue
                try:
                    taken = await loop.run_in_executor(
                        taking,
                        self._leases.take_runs,
                        c.queues,
                        c.worker_id,
                        c.run_lease_ttl,
                        free,
                        c.poll_timeout,
                    )
                except ChronologError:
                    log.exception(
                        "could not take runs; carrying on", extra={"worker_id": c.worker_id}
                    )
                    await asyncio.sleep(1.0)
                    continue
                for one in taken:
                    admitted = self._admit(one)
                    if admitted is None:
                        continue
                    release = slots.hold()
                    run = loop.create_task(self._run(*admitted, release))
                    runs.add(run)
                    run.add_done_callback(runs.discard)
                    run.add_done_callback(functools.partial(_give_back, release))

    def _admit(self, one: TakenItem) -> tuple[Ticket, Lease, bool] | None:
        """The ticket, lease and cancel flag of a queue entry whose run was taken, if it
        still needs running. Only these stay referenced while the run runs (a worker
        holds thousands): not the entry's payload, nor what the store answered."""
        item, taken = one.item, one.taken
        try:
            ticket = decode_ticket(item.payload)
        except MalformedEvent:
            log.exception("dropped an unreadable queue entry", extra={"run_id": item.id})
            if taken.lease is not None:
                self._end_soon(taken.lease, None, item.id)
            return None
        if taken.finished:
            log.info(
                "attempt already ran; duplicate queue entry dropped",
                extra={"run_id": ticket.run_id},
            )
            return None
        if taken.lease is None:
            log.info("run is held by a worker", extra={"run_id": ticket.run_id})
            return None
        attempt = (ticket.run_id, ticket.attempt)
        if attempt in self._holding:
            # Only a store whose take_runs is not atomic gets here (see LeaseStore).
            log.warning(
                "attempt already held here; duplicate queue entry dropped",
                extra={"run_id": ticket.run_id},
            )
            return None
        self._holding.add(attempt)
        return ticket, taken.lease, taken.cancelled

    async def _run(
        self, ticket: Ticket, lease: Lease, cancelled: bool, release: Callable[[], None]
    ) -> None:
        """Run one taken attempt and end its lease. One coroutine per running run;
        ``release`` gives its slot back once the job has run."""
        # Renewed from the moment it is taken: a batch of runs taken together may wait a
        # while for their starts to be appended, longer than a short lease TTL.
        cancel = RunCancel()
        self._keeper.hold(lease, on_lost=cancel.set)
        reported = False
        try:
            reported = await self._run_leased(ticket, lease, cancelled, cancel, release)
        except ChronologError:
            log.exception("run not completed; carrying on", extra={"run_id": ticket.run_id})
        finally:
            self._keeper.drop(lease)  # already dropped if it ran
            # Once the outcome is durable, no queue entry may run the attempt again.
            flag = finished_flag(ticket.run_id, ticket.attempt) if reported else None
            try:
                await self._end(lease, flag, ticket.run_id)
            finally:
                self._holding.discard((ticket.run_id, ticket.attempt))

    def _end_soon(self, lease: Lease, flag: str | None, run_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._end(lease, flag, run_id))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end(self, lease: Lease, flag: str | None, run_id: str) -> None:
        assert self._finisher is not None, "runs end inside run()"
        try:
            await self._finisher.end(RunEnd(lease.key, lease.token, flag))
        except ChronologError:
            log.exception("run lease not released", extra={"run_id": run_id})

    async def _run_leased(
        self,
        ticket: Ticket,
        lease: Lease,
        cancelled: bool,
        cancel: RunCancel,
        release: Callable[[], None],
    ) -> bool:
        """Run the attempt; True once its outcome is in the log."""
        if cancelled:
            reason = "cancelled before it started"
            await self._append_async(
                self._run_event(ticket, RunCancelled(reason, self.config.worker_id, lease.token))
            )
            self._metrics.run_finished(ticket.spec.name, ticket.spec.queue, "cancelled", None)
            return False
        await self._append_async(
            self._run_event(ticket, RunStarted(self.config.worker_id, lease.token))
        )
        with tracing.span("chronolog.execute", ticket.traceparent, _span_of(ticket)) as span:
            request = self._executing(ticket, cancel, tracing.traceparent(span))
            try:
                result = await self._executor.execute_async(request, cancel)
            finally:
                lost = self._executed(ticket, lease)
                release()
            tracing.mark(span, tracing.STATUS, result.status)
        log.info("run finished", extra={"run_id": ticket.run_id, "status": result.status})
        if self._handing_back.is_set():
            log.warning("run handed back on shutdown", extra={"run_id": ticket.run_id})
            return False
        if lost and result.status == "cancelled":
            # Stopped because the lease could not be renewed: the run is someone else's to
            # retry (the scheduler sees it lost), so this worker reports nothing.
            log.warning("run stopped: its lease was lost", extra={"run_id": ticket.run_id})
            return False
        await self._append_async(
            self._run_event(
                ticket, outcome_payload(ticket, result, self.config.worker_id, lease.token)
            )
        )
        spec, seconds = ticket.spec, result.duration_ms / 1000
        self._metrics.run_finished(spec.name, spec.queue, result.status, seconds)
        return True

    def _executing(
        self, ticket: Ticket, cancel: RunCancel, traceparent: str | None
    ) -> ExecutionRequest:
        """Make the run cancellable and say what to execute (the run's coroutine awaits
        the executor itself: one frame fewer per running run)."""
        with self._running_lock:
            self._running[ticket.run_id] = cancel
        if self._handing_back.is_set():
            cancel.set()  # taken while the drain ended: stop at once
        log.info(
            "run started",
            extra={"run_id": ticket.run_id, "job_id": ticket.job_id, "attempt": ticket.attempt},
        )
        self._metrics.run_started(ticket.spec.queue, lateness(ticket, self._clock()))
        return ExecutionRequest(
            ticket.run_id,
            ticket.job_id,
            ticket.attempt,
            ticket.spec,
            ticket.parameters,
            on_output=self._live.listener(ticket.run_id),
            scheduled_for=ticket.scheduled_for,
            traceparent=traceparent,
        )

    def _executed(self, ticket: Ticket, lease: Lease) -> bool:
        """The job is done: whether its lease was lost meanwhile."""
        self._metrics.run_ended()
        self._live.finish(ticket.run_id)
        lost = self._keeper.drop(lease)
        with self._running_lock:
            self._running.pop(ticket.run_id, None)
        if lost:
            log.warning("run lease lost while running", extra={"run_id": ticket.run_id})
        return lost

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

    async def _append_async(self, event: Event) -> None:
        """Append with the starts and outcomes of other runs (group commit)."""
        assert self._appender is not None, "appends of runs happen inside run()"
        await self._appender.append(event)

    def _append(self, event: Event) -> None:
        """Append, retrying while the log is unavailable (bounded); outside the loop."""
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


def lateness(ticket: Ticket, started_at: datetime) -> float | None:
    """Seconds from a scheduled run's fire time to its start; None if not scheduled."""
    if ticket.scheduled_for is None:
        return None
    return (started_at - ticket.scheduled_for).total_seconds()


def _span_of(ticket: Ticket) -> dict[str, str | int]:
    """The execution span's attributes (its status is added when the job ends)."""
    return {
        tracing.RUN_ID: ticket.run_id,
        tracing.JOB_ID: ticket.job_id,
        tracing.ATTEMPT: ticket.attempt,
    }


class LeaseKeeper:
    """Renews every run lease a worker holds, from one thread, with one ``renew_many``
    per period (one round trip for thousands of runs); a run whose lease cannot be kept
    (the worker was frozen past its TTL, say) is told to stop, and only that run."""

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
            self.renew_all()

    def renew_all(self) -> None:
        """One renewal round: every held lease in one call."""
        with self._lock:
            held = list(self._held.values())
        if not held:
            return
        try:
            kept = self._leases.renew_many(
                [(lease.key, lease.token) for lease, _ in held], self._ttl
            )
        except ChronologError:
            return  # the store is briefly unavailable; the leases may still be ours
        for (lease, on_lost), renewed in zip(held, kept, strict=True):
            if renewed:
                continue
            with self._lock:
                if self._held.get(lease.key, (None,))[0] is not lease:
                    continue  # dropped meanwhile: its run has ended
                self._lost.add(lease.key)
                self._held.pop(lease.key, None)
            on_lost()
