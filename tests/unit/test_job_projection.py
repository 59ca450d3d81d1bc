from datetime import UTC, datetime, timedelta

import pytest

from events.model import (
    Event,
    JobCreated,
    JobDeleted,
    JobPaused,
    JobResumed,
    JobSpec,
    JobUpdated,
    Payload,
    RunRequested,
)
from projector.job_projection import JobRow, Rejected, apply_job_event

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SPEC = JobSpec(name="daily-report", type="python", function="reports.generate_daily")


def event(payload: Payload, minutes: int = 0) -> Event:
    return Event(
        payload=payload, occurred_at=T0 + timedelta(minutes=minutes), actor="api", job_id="job-1"
    )


def created() -> JobRow:
    row = apply_job_event(None, event(JobCreated(SPEC)))
    assert isinstance(row, JobRow)
    return row


def test_created_job_takes_its_times_from_the_event() -> None:
    row = created()
    assert (row.id, row.spec, row.created_at, row.updated_at, row.version) == (
        "job-1",
        SPEC,
        T0,
        T0,
        1,
    )


def test_update_replaces_the_spec_and_keeps_created_at() -> None:
    new_spec = JobSpec(name="daily-report", type="python", function="reports.v2", retries=5)
    row = apply_job_event(
        created(), event(JobUpdated(new_spec, ("function", "retries")), minutes=5)
    )
    assert isinstance(row, JobRow)
    assert row.spec == new_spec
    assert row.created_at == T0
    assert row.updated_at == T0 + timedelta(minutes=5)
    assert row.version == 2


@pytest.mark.parametrize(("payload", "enabled"), [(JobPaused(), False), (JobResumed(), True)])
def test_pause_and_resume_set_enabled(payload: Payload, enabled: bool) -> None:
    row = apply_job_event(created(), event(payload, minutes=1))
    assert isinstance(row, JobRow)
    assert row.spec.enabled is enabled
    assert row.version == 2


def test_delete_removes_the_row() -> None:
    assert apply_job_event(created(), event(JobDeleted())) is None


def test_second_create_of_the_same_job_is_rejected() -> None:
    outcome = apply_job_event(created(), event(JobCreated(SPEC)))
    assert outcome == Rejected("job job-1 already exists")


@pytest.mark.parametrize("payload", [JobUpdated(SPEC), JobDeleted(), JobPaused(), JobResumed()])
def test_events_for_a_missing_job_are_rejected(payload: Payload) -> None:
    assert apply_job_event(None, event(payload)) == Rejected("job job-1 does not exist")


def test_run_events_are_not_job_events() -> None:
    with pytest.raises(TypeError):
        apply_job_event(created(), event(RunRequested(trigger="manual")))


def test_folding_is_deterministic() -> None:
    events = [event(JobCreated(SPEC)), event(JobPaused(), 1), event(JobResumed(), 2)]

    def fold() -> JobRow | None:
        row: JobRow | None = None
        for e in events:
            outcome = apply_job_event(row, e)
            assert not isinstance(outcome, Rejected)
            row = outcome
        return row

    assert fold() == fold()
