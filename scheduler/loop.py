"""The scheduler leader loop: gather inputs, decide (pure), append, dispatch.

Only the holder of the leader lease decides; standbys retry the lease and take over
within its TTL when the leader dies. Before each round the loop waits until the
projector has applied its own previous appends, so it never decides twice on stale
rows; deterministic run ids make any slip harmless rather than invisible.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from chronolog import tracing
from eventlog.port import EventLog, Position
from events.codec import EventCodec
from events.errors import ChronologError
from events.model import Event, RunCancelRequested, RunQueued, RunRequested
from leases.cancel_signal import signal_cancel
from leases.dispatch import SCHEDULER_LEADER_KEY, worker_lease_key
from leases.port import Lease, LeaseStore
from metrics.hooks import NO_METRICS, Metrics
from projector import scheduler_reads as reads
from projector.progress import ProjectionProgress
from scheduler.cancellation import cancel_events
from scheduler.decide import decide
from scheduler.dispatch import Dispatcher
from scheduler.envelope import run_event
from scheduler.fires import invalid_schedules, next_wakeup
from scheduler.gather import Gathered, gather
from scheduler.health import lost_workers
from scheduler.open_runs import OpenRuns
from scheduler.views import RunView

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    node_id: str
    # A dead leader's lease runs out at most this long after its last renewal (every third
    # of it); a standby then takes over within a twentieth of it.
    leader_ttl: float = 5.0
    max_idle: float = 1.0  # longest sleep between rounds (lost-run and timeout checks)
    reconcile_interval: float = 5.0
    min_round_interval: float = 0.02  # bounds the CPU a busy log can make rounds take
    dependency_lookback: timedelta = timedelta(hours=1)  # completions a new leader re-reads
    worker_check_interval: float = 1.0  # seconds between looks for workers that went silent
    # Rounds read only the runs changed since the previous one; every this many seconds
    # (and when it takes the lead) the leader reads all open runs again, as a safety net.
    full_read_interval: float = 60.0
    # Seconds between inspections of the running runs' leases (lost runs): one lookup per
    # running run, too much for every round with thousands running. A lost run waits for
    # its lease to expire anyway; this adds at most this much to it.
    lease_check_interval: float = 0.5
    # How long a manual run the API queued may show pending: none where the projector
    # applies appends whole (the embedded log), ``API_QUEUED_GRACE`` on Kafka.
    api_queued_grace: timedelta = timedelta(0)


class Scheduler:
    def __init__(
        self,
        config: SchedulerConfig,
        log: EventLog,
        codec: EventCodec,
        engine: Engine,
        *,
        leases: LeaseStore,
        progress: ProjectionProgress,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.config = config
        self._metrics = metrics
        self._log = log
        self._codec = codec
        self._engine = engine
        self._leases = leases
        self._progress = progress
        self._clock = clock
        self._rng = rng or random.Random()
        self._dispatcher = Dispatcher(leases)
        self._jobs = reads.JobCache()
        self._open = OpenRuns(timedelta(seconds=config.full_read_interval))
        self._invalid: set[str] = set()  # jobs already reported with uncomputable schedules
        self._seen: dict[int, int] = {}  # checkpoints when the last round started reading
        self._leadership: Lease | None = None
        self._renewed_at = datetime.min.replace(tzinfo=UTC)
        self._unapplied: list[Position] = []
        self._completed_since = self._clock()
        self._reconciled_at = datetime.min.replace(tzinfo=UTC)
        self._workers_checked_at = datetime.min.replace(tzinfo=UTC)
        self._leases_checked_at = datetime.min.replace(tzinfo=UTC)
        self._round_began = 0.0  # time.monotonic() when the last round began

    @property
    def is_leader(self) -> bool:
        return self._leadership is not None

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                wake_at = self.step()
                if self.is_leader:
                    self._sleep_until(wake_at, stop)  # reads the checkpoints: may fail too
                else:  # a standby only retries the lease; the log's progress is not its business
                    stop.wait(max(0.0, (wake_at - self._clock()).total_seconds()))
            except (ChronologError, SQLAlchemyError):
                log.exception(
                    "scheduling round failed; retrying", extra={"node": self.config.node_id}
                )
                stop.wait(1.0)
        self._resign()

    def step(self) -> datetime:
        """Lead if possible, run one round if leading; return when to run the next."""
        now = self._clock()
        if not self._lead(now):
            # Retried often (a lease-store call is cheap): a standby takes over within a
            # twentieth of the TTL of the dead leader's lease running out.
            return now + timedelta(seconds=self.config.leader_ttl / 20)
        if self._unapplied and not self._progress.wait_for(self._unapplied, timeout=5.0):
            log.warning("read model lags behind the scheduler's appends; waiting")
            return now
        return self._round(now)

    # --- leadership ------------------------------------------------------------------

    def _lead(self, now: datetime) -> bool:
        ttl = self.config.leader_ttl
        if self._leadership is not None:
            if now - self._renewed_at < timedelta(seconds=ttl / 3):
                return True
            if self._leases.renew(self._leadership.key, self._leadership.token, ttl):
                self._renewed_at = now
                return True
            log.warning("lost the scheduler leadership", extra={"node": self.config.node_id})
            self._leadership = None
            self._open.forget()
        self._leadership = self._leases.acquire(SCHEDULER_LEADER_KEY, self.config.node_id, ttl)
        if self._leadership is not None:
            self._become_leader(now)
        return self._leadership is not None

    def _become_leader(self, now: datetime) -> None:
        self._renewed_at = now
        self._completed_since = now - self.config.dependency_lookback
        self._open.forget()  # another leader decided meanwhile: read every open run again
        with Session(self._engine) as session:
            # The lease store is derived state; its token counter may have been lost.
            self._leases.ensure_token_floor(reads.max_lease_token(session))
        log.info("leading the scheduler", extra={"node": self.config.node_id})

    def _resign(self) -> None:
        if self._leadership is not None:
            self._leases.release(self._leadership.key, self._leadership.token)
            self._leadership = None

    # --- one round -------------------------------------------------------------------

    def _round(self, now: datetime) -> datetime:
        self._round_began = time.monotonic()
        gathered = self._gather(now)
        events = tracing.fired(
            decide(gathered.snapshot, now, self._rng, api_queued_grace=self.config.api_queued_grace)
        )
        events += self._signal_cancels(events, gathered)
        events += self._lost_workers(now)
        self._append(events)
        self._dispatch(events, gathered)
        self._completed_since = max(
            [
                self._completed_since,
                *(r.finished_at for r in gathered.snapshot.completed if r.finished_at),
            ]
        )
        if now - self._reconciled_at > timedelta(seconds=self.config.reconcile_interval):
            with Session(self._engine) as session:
                self._dispatcher.reconcile(session, now)
            self._reconciled_at = now
        self._report_invalid(gathered)
        return self._next_round(gathered, now)

    def _gather(self, now: datetime) -> Gathered:
        # Taken before reading: whatever is applied after it wakes the next round at once,
        # and the next refresh reads what changed from there.
        self._seen = self._progress.checkpoints()
        interval = timedelta(seconds=self.config.lease_check_interval)
        check_leases = now - self._leases_checked_at >= interval
        with Session(self._engine) as session:
            self._open.refresh(session, self._seen, now)
            gathered = gather(
                session,
                self._leases,
                self._completed_since,
                self._jobs,
                self._open,
                check_leases=check_leases,
            )
        if check_leases:
            self._leases_checked_at = now
        return gathered

    def _report_invalid(self, gathered: Gathered) -> None:
        """Log each job whose schedule cannot be computed once, not every round."""
        invalid = invalid_schedules(gathered.snapshot.jobs.values())
        for job_id in invalid.keys() - self._invalid:
            log.error(
                "job has a schedule that cannot be computed",
                extra={"job_id": job_id, "error": invalid[job_id]},
            )
        self._invalid = set(invalid)

    def _lost_workers(self, now: datetime) -> list[Event]:
        """``WorkerLost`` for active workers whose heartbeat lapsed (every few rounds)."""
        if now - self._workers_checked_at < timedelta(seconds=self.config.worker_check_interval):
            return []
        self._workers_checked_at = now
        with Session(self._engine) as session:
            workers = reads.active_workers(session)
        # Read the workers before their leases, as for runs: a worker registered in between
        # is absent from the list rather than listed without its (live) lease.
        keys = [worker_lease_key(worker.id) for worker in workers]
        live = set(self._leases.inspect(keys)) if keys else set()
        events = lost_workers(workers, live, now)
        for event in events:
            log.warning(
                "worker missed three heartbeats; recording it lost",
                extra={"worker_id": getattr(event.payload, "worker_id", None)},
            )
        return events

    def _signal_cancels(self, events: Sequence[Event], gathered: Gathered) -> list[Event]:
        """Signal the cancels the rules decided (``replace``); a run the signal took off
        its queue is cancelled at once (``scheduler.cancellation``)."""
        extra: list[Event] = []
        views: dict[str, RunView] | None = None  # indexed for the first cancel only
        for event in events:
            if not isinstance(event.payload, RunCancelRequested) or event.run_id is None:
                continue
            if views is None:
                views = {r.run_id: r for r in gathered.snapshot.open_runs}
            run = views.get(event.run_id)
            queue = gathered.queue_of(event.run_id) if run and run.status == "queued" else None
            if signal_cancel(self._leases, event.run_id, queue) and run is not None:
                reason = event.payload.reason or "cancel requested"
                payloads = cancel_events(
                    run.status, reason, taken_off_queue=True, record_request=False
                )
                extra += [run_event(p, run, event.occurred_at) for p in payloads]
        return extra

    def _dispatch(self, events: Sequence[Event], gathered: Gathered) -> None:
        queued = {e.run_id for e in events if isinstance(e.payload, RunQueued) and e.run_id}
        if not queued:
            return
        fresh = {
            e.run_id: e.payload.parameters
            for e in events
            if isinstance(e.payload, RunRequested) and e.run_id is not None
        }
        with Session(self._engine) as session:
            stored = reads.run_parameters(session, queued - set(fresh))
            fired = reads.fire_times(session, queued - set(fresh))
            traced = reads.traceparents(session, queued - set(fresh)) if tracing.enabled() else {}
        specs = {job_id: view.spec for job_id, view in gathered.snapshot.jobs.items()}
        self._dispatcher.dispatch(events, specs, {**stored, **fresh}, fired, traced)

    def _append(self, events: Sequence[Event]) -> None:
        if not events:
            return
        self._unapplied = self._log.append([(e.key, self._codec.encode(e)) for e in events])
        counts: dict[str, int] = {}
        for event in events:
            counts[event.type] = counts.get(event.type, 0) + 1
        self._metrics.decided(counts)
        log.info("scheduler decided", extra={"events": counts})

    def _next_round(self, gathered: Gathered, now: datetime) -> datetime:
        wake = now + timedelta(seconds=self.config.max_idle)
        fire = next_wakeup(gathered.snapshot.jobs.values(), now)
        # Only a retrying run waits for a retry time (queueing it clears the time).
        retrying = self._open.groups.by_status.get("retrying", [])
        retries = [r.next_retry_at for r in retrying if r.next_retry_at is not None]
        return min([wake, *([fire] if fire else []), *retries])

    def _sleep_until(self, wake_at: datetime, stop: threading.Event) -> None:
        """Sleep until ``wake_at``, or until the projector applies something new, but
        begin the next round no sooner than ``min_round_interval`` after this one began
        (a stream of commits must not make rounds spin; the round's own time counts)."""
        since = time.monotonic() - self._round_began
        stop.wait(max(0.0, self.config.min_round_interval - since))
        timeout = max(0.0, (wake_at - self._clock()).total_seconds())
        seen = self._seen
        self._progress.wait_until(
            lambda: stop.is_set() or self._progress.checkpoints() != seen, timeout
        )
