"""Run command handlers: trigger, cancel, retry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from api.appending import api_event, append_and_wait
from api.auth import Caller
from api.context import ApiContext
from api.errors import Conflict, Invalid, NotFound
from api.validation import check_parameters
from events.ids import idempotency_run_id, new_run_id
from events.model import RunRequested, RunRetryRequested
from leases.cancel_signal import signal_cancel
from projector import api_reads
from projector.run_projection import TERMINAL, RunRow
from scheduler.cancellation import cancel_events


@dataclass(frozen=True, slots=True)
class Triggered:
    run: RunRow
    created: bool  # False when an Idempotency-Key named an earlier trigger


class RunCommands:
    def __init__(self, context: ApiContext, caller: Caller) -> None:
        self._ctx = context
        self._caller = caller

    def trigger(
        self, job_ref: str, parameters: dict[str, Any], idempotency_key: str | None
    ) -> Triggered:
        """Request a manual run; answer once the scheduler has queued or skipped it (bounded)."""
        if problems := check_parameters(parameters):
            raise Invalid.of(problems)
        with Session(self._ctx.engine) as session:
            job = api_reads.find_job(session, job_ref)
            if job is None:
                raise NotFound(f"no job with id or name {job_ref!r}")
            run_id = (
                idempotency_run_id(job.id, idempotency_key) if idempotency_key else new_run_id()
            )
            if idempotency_key and (earlier := api_reads.get_run(session, run_id)) is not None:
                return Triggered(earlier, created=False)
        merged = {**job.spec.parameters, **parameters}
        request = RunRequested(trigger="manual", parameters=merged, idempotency_key=idempotency_key)
        event = api_event(
            self._ctx,
            self._caller,
            request,
            job.id,
            run_id=run_id,
            attempt=1,
            correlation_id=run_id,
        )
        append_and_wait(self._ctx, [event])
        self._ctx.progress.wait_until(
            lambda: self._status(run_id) != "pending", self._ctx.decision_wait
        )
        return Triggered(self._run(run_id), created=True)

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

    def _status(self, run_id: str) -> str | None:
        with Session(self._ctx.engine) as session:
            run = api_reads.get_run(session, run_id)
        return run.status if run is not None else None

    def _run(self, run_id: str) -> RunRow:
        with Session(self._ctx.engine) as session:
            run = api_reads.get_run(session, run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        return run
