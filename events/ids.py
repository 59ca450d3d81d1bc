"""Run ids and lease keys.

Runs the scheduler creates get **deterministic** ids (uuid5), so deciding twice (two
schedulers during a leader hand-over, a restart, a round re-run on stale rows) requests
the same run id twice, and the projection keeps the first ``RunRequested`` only. Only a
run a person asks for without an idempotency key gets a random id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

RUN_ID_NAMESPACE: Final = uuid.UUID("c0d3abd8-653f-4bbb-a4d1-d0854242be7e")
"""The uuid5 namespace of Chronolog run ids. Never change it: ids already in logs use it."""

RUN_ID_PREFIX: Final = "run-"


def fire_run_id(job_id: str, fire_time: datetime) -> str:
    """The run id of ``job_id``'s schedule fire at ``fire_time`` (the same instant in any
    zone gives the same id)."""
    instant = fire_time.astimezone(UTC).isoformat()
    return _run_id(f"{job_id}|{instant}")


def idempotency_run_id(job_id: str, key: str) -> str:
    """The run id of a request to run ``job_id`` with idempotency key ``key``."""
    return _run_id(f"{job_id}|key|{key}")


def dependency_run_id(job_id: str, upstream_run_id: str, upstream_attempt: int) -> str:
    """The run id of ``job_id``'s run decided by attempt ``upstream_attempt`` of the
    upstream run ``upstream_run_id`` ending (succeeding, or failing for good).

    The attempt is part of the id so that an upstream run retried by hand after a dead
    letter (same run id, a later attempt) can still trigger its dependents.
    """
    return _run_id(f"{job_id}|dependency|{upstream_run_id}|{upstream_attempt}")


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex[:16]}"


def new_run_id() -> str:
    """A random run id, for manual runs without an idempotency key."""
    return f"{RUN_ID_PREFIX}{uuid.uuid4()}"


def _run_id(name: str) -> str:
    return f"{RUN_ID_PREFIX}{uuid.uuid5(RUN_ID_NAMESPACE, name)}"
