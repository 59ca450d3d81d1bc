"""Identifiers. Run ids that stand for a fact (a fire time, an idempotency key, an
upstream completion) are derived from it, so deciding twice can never make two runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

RUN_NAMESPACE: Final = uuid.UUID("6f1c3f0e-8d5a-4a77-9d2e-2f7b8c1e4a90")


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex[:16]}"


def new_run_id() -> str:
    return f"run-{uuid.uuid4()}"


def derived_run_id(job_id: str, fact: str) -> str:
    return f"run-{uuid.uuid5(RUN_NAMESPACE, f'{job_id}|{fact}')}"


def fire_run_id(job_id: str, fire_time: datetime) -> str:
    """The run of ``job_id`` for one scheduled fire time."""
    return derived_run_id(job_id, f"fire|{fire_time.isoformat()}")


def idempotent_run_id(job_id: str, key: str) -> str:
    """The run a trigger with ``Idempotency-Key: key`` creates."""
    return derived_run_id(job_id, f"key|{key}")


def dependency_run_id(job_id: str, upstream_run_id: str) -> str:
    """The run of ``job_id`` that the completion of ``upstream_run_id`` triggers."""
    return derived_run_id(job_id, f"upstream|{upstream_run_id}")
