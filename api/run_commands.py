"""Run command handlers: trigger, cancel, retry."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from api.accepted import AcceptedRun
from api.appending import api_event, append_and_wait, append_events
from api.auth import Caller
from api.context import ApiContext
from api.errors import ApiError, Conflict, Invalid, NotFound, Unavailable
from api.triggers import (
    NewRun,
    TriggerAnswer,
    TriggerRequest,
    keyed_run_ids,
    plan_triggers,
    request_problems,
)
from api.validation import check_parameters
from chronolog import tracing
from events.ids import new_run_id
from events.model import Event, RunQueued, RunRequested, RunRetryRequested
from leases.cancel_signal import signal_cancel
from leases.errors import LeaseError
from projector import api_reads
from projector.run_projection import TERMINAL, RunRow
from scheduler.cancellation import cancel_events
from scheduler.concurrency import queued_payload
from scheduler.dispatch import Dispatcher

log = logging.getLogger(__name__)


class RunCommands:
    def __init__(self, context: ApiContext, caller: Caller) -> None:
        self._ctx = context
        self._caller = caller

    def trigger(
        self, job_ref: str, parameters: dict[str, Any], idempotency_key: str | None
    ) -> TriggerAnswer:
        """Request a manual run; answer once its events are durable (status ``pending``,
        or ``queued`` for a run admitted without state)."""
        if problems := check_parameters(parameters):
            raise Invalid.of(problems)
        request = TriggerRequest(job_ref, parameters, idempotency_key)
        [answer] = self.trigger_many([request], where=lambda _: "", unknown_job=NotFound)
        return answer

    def trigger_many(
        self,
        requests: Sequence[TriggerRequest],
        where: Callable[[int], str],
        unknown_job: type[ApiError] = Invalid,
    ) -> list[TriggerAnswer]:
        """Request runs, all or none: any invalid request refuses the whole batch (422,
        fields prefixed by ``where(i)``). Their events are appended in one log call.

        Round trips: two reads of the jobs (by id, by name), one of the keyed runs (if any
        keys), one append, and one push to the lease store's queues if any run was
        admitted without state.
        The new runs' trace (tracing on) begins at this span.
        """
        with tracing.span(
            "chronolog.trigger", attributes={"chronolog.requests": len(requests)}
        ) as span:
            return self._trigger_many(requests, where, unknown_job, tracing.traceparent(span))

    def _trigger_many(
        self,
        requests: Sequence[TriggerRequest],
        where: Callable[[int], str],
        unknown_job: type[ApiError],
        traceparent: str | None,
    ) -> list[TriggerAnswer]:
        with Session(self._ctx.engine) as session:
            jobs = api_reads.find_jobs(session, {r.job for r in requests})
            if problems := request_problems(requests, jobs, where):
                unknown = [p for p in problems if p.field == "job" or p.field.endswith("].job")]
                if unknown_job is not Invalid and unknown:
                    raise unknown_job(unknown[0].reason)
                raise Invalid.of(problems)
            projected = api_reads.run_states(session, keyed_run_ids(requests, jobs))
        accepted = self._ctx.accepted
        plan = plan_triggers(requests, jobs, projected, _status_of(accepted.get), new_run_id)
        if plan.new_runs:
            per_run = [self._events(new, traceparent) for new in plan.new_runs]
            events = [event for run_events in per_run for event in run_events]
            positions = iter(append_events(self._ctx, events))
            # A read of the run waits for its last event, so it shows what was answered.
            landed = [[next(positions) for _ in run_events][-1] for run_events in per_run]
            accepted.remember(
                AcceptedRun(new.run_id, new.job.id, position, new.status)
                for new, position in zip(plan.new_runs, landed, strict=True)
            )
            self._push([new for new in plan.new_runs if new.queued], events)
        return plan.answers

    def _events(self, new: NewRun, traceparent: str | None) -> list[Event]:
        """The run's ``RunRequested``, and its ``RunQueued`` when admitted without state:
        one key (the job's), so they land in this order."""
        requested = self._requested(new, traceparent)
        if not new.queued:
            return [requested]
        queued = self._event_of(new, queued_payload(new.job.spec))
        return [requested, dataclasses.replace(queued, causation_id=requested.event_id)]

    def _push(self, queued: Sequence[NewRun], events: Sequence[Event]) -> None:
        """Push the tickets of the runs queued here, as the scheduler would. A failed push
        loses nothing: the scheduler's reconciliation re-pushes queued runs no queue holds."""
        if not queued:
            return
        specs = {new.job.id: new.job.spec for new in queued}
        parameters = {new.run_id: new.parameters for new in queued}
        try:
            Dispatcher(self._ctx.leases).dispatch(events, specs, parameters)
        except LeaseError as e:
            log.warning(
                "queued runs not pushed; reconciliation will push them",
                extra={"run_ids": [new.run_id for new in queued], "error": str(e)},
            )

    def _requested(self, new: NewRun, traceparent: str | None) -> Event:
        payload = RunRequested(
            trigger="manual",
            parameters=new.parameters,
            idempotency_key=new.idempotency_key,
            traceparent=traceparent,
        )
        return self._event_of(new, payload)

    def _event_of(self, new: NewRun, payload: RunRequested | RunQueued) -> Event:
        return api_event(
            self._ctx,
            self._caller,
            payload,
            new.job.id,
            run_id=new.run_id,
            attempt=1,
            correlation_id=new.run_id,
        )

    def cancel(self, run_id: str, reason: str | None) -> RunRow:
        """Stop a run: drop it if it waits, signal its worker if it runs."""
        run = self._run(run_id)
        if run.status in TERMINAL:
            raise Conflict(f"run {run_id} is already {run.status}")
        reason = reason or "cancelled by request"
        queue = run.queue if run.status == "queued" else None
        taken = signal_cancel(self._ctx.leases, run_id, queue)
        payloads = cancel_events(run.status, reason, taken_off_queue=taken, record_request=True)
        events = [
            api_event(self._ctx, self._caller, p, run.job_id, run_id=run_id, attempt=run.attempt)
            for p in payloads
        ]
        append_and_wait(self._ctx, events)
        return self._run(run_id)

    def retry(self, run_id: str) -> RunRow:
        """Give a run that failed for good (dead-lettered) one more attempt, now.

        A ``failing`` run is refused (409): the scheduler is still deciding its retry.
        """
        run = self._run(run_id)
        if run.status != "failed":
            raise Conflict(f"run {run_id} is {run.status}; only failed runs can be retried")
        retry = RunRetryRequested(next_attempt=run.attempt + 1, reason="retried by hand")
        event = api_event(
            self._ctx, self._caller, retry, run.job_id, run_id=run_id, attempt=run.attempt + 1
        )
        append_and_wait(self._ctx, [event])
        return self._run(run_id)

    def _run(self, run_id: str) -> RunRow:
        run = load_run(self._ctx, run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        return run


def load_run(ctx: ApiContext, run_id: str) -> RunRow | None:
    """The run, with every attempt; a run this process accepted but the read model does
    not show yet is waited for (bounded by the read-your-writes timeout)."""
    with Session(ctx.engine) as session:
        run = api_reads.get_run(session, run_id)
    if run is None and wait_for_accepted(ctx, run_id):
        with Session(ctx.engine) as session:
            run = api_reads.get_run(session, run_id)
    return run


def wait_for_accepted(ctx: ApiContext, run_id: str) -> bool:
    """Wait until the read model has the ``RunRequested`` this process appended for
    ``run_id``; False at once for a run it did not accept."""
    accepted = ctx.accepted.get(run_id)
    if accepted is None:
        return False
    if ctx.progress.wait_for([accepted.position], ctx.ryw_timeout):
        return True
    raise Unavailable(f"run {run_id} is accepted but the read model does not show it yet")


def _status_of(find: Callable[[str], AcceptedRun | None]) -> Callable[[str], str | None]:
    def status(run_id: str) -> str | None:
        run = find(run_id)
        return None if run is None else run.status

    return status
