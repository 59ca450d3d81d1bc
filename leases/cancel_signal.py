"""Signalling a cancel to whoever holds a run: the one adapter the API and the scheduler call.

The flag (``cancel:<run id>``) stops a worker that pops the run later; the message on
``CANCEL_CHANNEL`` stops the worker running it; a run still waiting in its queue is
taken off it, and then nobody can run it. What to append is ``scheduler.cancellation``'s
rule, fed with whether the run was taken off its queue.
"""

from __future__ import annotations

from leases.dispatch import CANCEL_CHANNEL, CANCEL_FLAG_TTL, cancel_flag
from leases.port import LeaseStore


def signal_cancel(leases: LeaseStore, run_id: str, queue: str | None) -> bool:
    """Signal the cancel of ``run_id``; ``queue``: the queue it waits in, if it is queued.

    Returns True if the run was taken off ``queue`` (no worker has it or will).
    """
    leases.set_flag(cancel_flag(run_id), CANCEL_FLAG_TTL)
    leases.publish(CANCEL_CHANNEL, run_id.encode())
    return queue is not None and leases.remove(queue, run_id)
