"""Reading a delivery of the change stream: what it touched, and the failures in it."""

from __future__ import annotations

from dashboard.live import alarms, touches, touches_job, touches_run

DELIVERY = {
    "kind": "mixed",
    "kinds": ["run", "worker"],
    "job_ids": ["job-a"],
    "run_ids": ["run-1", "run-2"],
    "changes": [
        {"kind": "run", "run_id": "run-1", "status": "running"},
        {"kind": "run", "run_id": "run-2", "status": "failing", "event_type": "RunFailed"},
        {"kind": "worker", "run_id": None, "status": "active"},
        {"kind": "run", "run_id": "run-1", "status": "failed", "event_type": "RunDeadLettered"},
    ],
}


def test_a_delivery_touches_every_kind_job_and_run_it_carries() -> None:
    assert touches(DELIVERY, "run") and touches(DELIVERY, "worker")
    assert not touches(DELIVERY, "job")
    assert touches_job(DELIVERY, "job-a") and not touches_job(DELIVERY, "job-b")
    assert touches_run(DELIVERY, "run-2") and not touches_run(DELIVERY, "run-3")


def test_every_failure_delivered_together_is_an_alarm_in_order() -> None:
    assert [(a["run_id"], a["status"]) for a in alarms(DELIVERY)] == [
        ("run-2", "failing"),
        ("run-1", "failed"),
    ]


def test_a_resync_touches_everything_and_alarms_nothing() -> None:
    resync = {"kind": "resync", "kinds": [], "job_ids": [], "run_ids": [], "changes": []}
    assert touches(resync, "job") and touches_job(resync, "x") and touches_run(resync, "y")
    assert alarms(resync) == []
    assert not touches(None, "run") and alarms(None) == []
