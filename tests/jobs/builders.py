"""Building execution requests for the executor tests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from events.model import JobSpec, JobType
from worker.execution import ExecutionRequest


def make_request(
    job_type: JobType,
    parameters: dict[str, Any] | None = None,
    *,
    run_id: str | None = None,
    attempt: int = 1,
    scheduled_for: datetime | None = None,
    **spec: Any,
) -> ExecutionRequest:
    """A request for a job of ``job_type`` whose spec has the given fields."""
    return ExecutionRequest(
        run_id=run_id or str(uuid.uuid4()),
        job_id="job-" + uuid.uuid4().hex[:8],
        attempt=attempt,
        spec=JobSpec(name="test-job", type=job_type, **spec),
        parameters=parameters or {},
        scheduled_for=scheduled_for,
    )
