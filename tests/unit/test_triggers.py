"""The pure rule behind manual triggers, one or a batch (``api.triggers``)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from api.triggers import (
    TriggerAnswer,
    TriggerRequest,
    keyed_run_ids,
    plan_triggers,
    request_problems,
)
from events.ids import idempotency_run_id
from events.model import JobSpec
from projector.api_reads import RunState
from projector.job_projection import JobRow

T0 = datetime(2026, 12, 2, tzinfo=UTC)
A = JobRow("job-a", JobSpec(name="a", type="shell", command="true", parameters={"x": 0}), T0, T0, 1)
B = JobRow("job-b", JobSpec(name="b", type="shell", command="true"), T0, T0, 1)
FREE_SPEC = JobSpec(
    name="free", type="shell", command="true", concurrency_policy="allow", max_concurrency=None
)
FREE = JobRow("job-free", FREE_SPEC, T0, T0, 1)
JOBS = {"a": A, "job-a": A, "b": B, "free": FREE}


def ids() -> itertools.count[int]:
    return itertools.count(1)


def plan(
    requests: list[TriggerRequest],
    projected: dict[str, RunState] | None = None,
    accepted: dict[str, str] | None = None,
) -> tuple[list[TriggerAnswer], list[tuple[str, str, dict[str, object]]]]:
    counter = ids()
    result = plan_triggers(
        requests, JOBS, projected or {}, (accepted or {}).get, lambda: f"run-{next(counter)}"
    )
    return result.answers, [(n.run_id, n.job.id, n.parameters) for n in result.new_runs]


def test_requests_without_keys_each_make_a_run_with_merged_parameters() -> None:
    answers, new = plan([TriggerRequest("a", {"y": 1}), TriggerRequest("job-a", {"x": 2})])
    assert answers == [
        TriggerAnswer("run-1", "job-a", "pending"),
        TriggerAnswer("run-2", "job-a", "pending"),
    ]
    assert new == [("run-1", "job-a", {"x": 0, "y": 1}), ("run-2", "job-a", {"x": 2})]


def test_a_key_names_one_run_per_job_within_a_batch() -> None:
    keyed = idempotency_run_id("job-a", "k")
    answers, new = plan(
        [
            TriggerRequest("a", {}, "k"),
            TriggerRequest("job-a", {"x": 9}, "k"),
            TriggerRequest("b", {}, "k"),
        ]
    )
    assert [(a.run_id, a.created) for a in answers] == [
        (keyed, True),
        (keyed, False),  # the same job and key: the first item's run, its parameters
        (idempotency_run_id("job-b", "k"), True),
    ]
    assert [run_id for run_id, _, _ in new] == [keyed, idempotency_run_id("job-b", "k")]


def test_a_key_of_a_projected_run_answers_its_state_and_requests_nothing() -> None:
    keyed = idempotency_run_id("job-a", "k")
    projected = {keyed: RunState("job-a", "skipped", "overlap")}
    answers, new = plan([TriggerRequest("a", {}, "k")], projected)
    assert answers == [TriggerAnswer(keyed, "job-a", "skipped", "overlap", created=False)]
    assert new == []


def test_a_key_this_process_accepted_but_not_yet_projected_answers_pending() -> None:
    keyed = idempotency_run_id("job-a", "k")
    answers, new = plan([TriggerRequest("a", {}, "k")], accepted={keyed: "pending"})
    assert answers == [TriggerAnswer(keyed, "job-a", "pending", created=False)]
    assert new == []


def test_a_run_of_an_unlimited_allow_job_is_queued_by_the_plan() -> None:
    none: dict[str, str] = {}
    requests = [TriggerRequest("free"), TriggerRequest("a")]
    result = plan_triggers(requests, JOBS, {}, none.get, iter(["r1", "r2"]).__next__)
    assert [(a.run_id, a.status) for a in result.answers] == [("r1", "queued"), ("r2", "pending")]
    assert [(n.run_id, n.queued) for n in result.new_runs] == [("r1", True), ("r2", False)]


def test_a_repeated_key_answers_the_status_it_was_accepted_with() -> None:
    keyed = idempotency_run_id("job-free", "k")
    answers, new = plan(
        [TriggerRequest("free", {}, "k"), TriggerRequest("free", {}, "k")],
    )
    assert [(a.status, a.created) for a in answers] == [("queued", True), ("queued", False)]
    assert len(new) == 1
    answers, new = plan([TriggerRequest("free", {}, "k")], accepted={keyed: "queued"})
    assert answers == [TriggerAnswer(keyed, "job-free", "queued", created=False)]
    assert new == []


def test_problems_name_each_item_and_keyed_ids_skip_unknown_jobs() -> None:
    requests = [
        TriggerRequest("a"),
        TriggerRequest("nope", {}, "k"),
        TriggerRequest("b", {"db": {"password": "x"}}, "k"),
    ]
    problems = request_problems(requests, JOBS, lambda i: f"runs[{i}].")
    assert [p.field for p in problems] == ["runs[1].job", "runs[2].parameters.db.password"]
    assert keyed_run_ids(requests, JOBS) == [idempotency_run_id("job-b", "k")]
