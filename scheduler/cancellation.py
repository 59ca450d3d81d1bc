"""Cancelling a run: one rule for the API and the scheduler alike (pure).

Facts in: the run's status, whether the cancel signal took it off its dispatch queue
(``leases.cancel_signal``), the reason, and whether the ask must be recorded. Events out:

- a run that is no longer open: nothing (the API answers 409 before asking);
- a run someone holds (``running``, or ``queued`` and not taken off its queue: a worker
  popped it or may pop it) gets ``RunCancelRequested``; its worker, signalled through
  the cancel flag and ``CANCEL_CHANNEL``, ends it with ``RunCancelled`` and its token;
- a run nobody holds (``pending``, ``failing``, ``retrying``, or ``queued`` and taken off
  its queue) is ``RunCancelled`` at once, preceded by ``RunCancelRequested`` when the ask
  is recorded (``record_request``: a caller's cancel is, so the audit trail shows who
  asked; a cancel the scheduler decides for a run nobody holds is not).

The worker's side (``worker.runner``) receives the same signal as before.
"""

from __future__ import annotations

from events.model import Payload, RunCancelled, RunCancelRequested
from projector.run_projection import OPEN


def held(status: str, *, taken_off_queue: bool) -> bool:
    """True when a worker has the run, or can still pop it."""
    return status == "running" or (status == "queued" and not taken_off_queue)


def cancel_events(
    status: str, reason: str, *, taken_off_queue: bool, record_request: bool
) -> list[Payload]:
    """The payloads that cancel a run in ``status`` (see the module's rule), in order."""
    if status not in OPEN:
        return []
    if held(status, taken_off_queue=taken_off_queue):
        return [RunCancelRequested(reason)]
    request: list[Payload] = [RunCancelRequested(reason)] if record_request else []
    return [*request, RunCancelled(reason)]
