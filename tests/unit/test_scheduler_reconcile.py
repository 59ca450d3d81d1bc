"""Reconciling the dispatch queues: which queued runs must be pushed again (pure)."""

from __future__ import annotations

from events.model import JobSpec
from leases.dispatch import run_lease_key
from projector.scheduler_reads import QueuedRun
from scheduler.dispatch import held_by_nobody, repush_tickets

SPEC = JobSpec(name="j", type="shell", command="true")


def _queued(run_id: str, queue: str = "default", job_id: str = "job-1") -> QueuedRun:
    return QueuedRun(run_id, job_id, 1, queue, 5, None, None)


def test_a_run_its_queue_holds_or_a_worker_leased_is_left_alone() -> None:
    runs = [_queued("in-queue"), _queued("leased"), _queued("lost"), _queued("elsewhere", "q2")]
    in_queues = {"default": {"in-queue"}, "q2": set[str]()}
    leased = {run_lease_key("leased")}
    missing = held_by_nobody(runs, in_queues, leased)
    assert [r.run_id for r in missing] == ["lost", "elsewhere"]


def test_a_queue_never_listed_holds_nothing() -> None:
    assert [r.run_id for r in held_by_nobody([_queued("a", "new")], {}, set())] == ["a"]


def test_tickets_carry_the_job_spec_and_parameters_and_skip_deleted_jobs() -> None:
    runs = [_queued("a"), _queued("b", job_id="deleted")]
    tickets = repush_tickets(runs, {"job-1": SPEC}, {"a": {"x": 1}})
    assert len(tickets) == 1
    queue, priority, ticket = tickets[0]
    assert (queue, priority, ticket.run_id, ticket.parameters) == ("default", 5, "a", {"x": 1})
    assert ticket.spec == SPEC
