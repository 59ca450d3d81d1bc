"""Write the golden encoded events of the current schema version.

Run once per published schema version, then commit the files:

    .venv/bin/python tests/golden/make_golden.py

Existing files are never overwritten: a golden file is what a released build wrote, and
the test that decodes it proves later builds still read it. The samples of a published
version never change either; a new version gets a new ``vN_samples`` function.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime
from pathlib import Path

from events.codec import SCHEMA_ROOT, EventCodec, schema_versions
from events.model import (
    Event,
    Hook,
    HookDelivered,
    HookDeliveryFailed,
    JobCreated,
    JobDeleted,
    JobPaused,
    JobResumed,
    JobSpec,
    JobUpdated,
    Payload,
    RunCancelled,
    RunCancelRequested,
    RunDeadLettered,
    RunFailed,
    RunLost,
    RunQueued,
    RunRequested,
    RunRetryRequested,
    RunRetryScheduled,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    RunTimedOut,
    TokenCreated,
    TokenRevoked,
    WorkerDeregistered,
    WorkerLost,
    WorkerRegistered,
)

GOLDEN_ROOT = Path(__file__).parent
JOB_ID = "8a4f0f3e-0c51-4c0e-9a43-5d1f1b7c2e10"
RUN_ID = "2b7c9d2a-6f0e-5a8b-9c1d-3e4f5a6b7c8d"
AT = datetime(2024, 3, 31, 1, 59, 59, 123000, tzinfo=UTC)
LATER = datetime(2024, 3, 31, 2, 0, 30, 999000, tzinfo=UTC)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def v1_spec() -> JobSpec:
    """A job spec with every field set to something other than its default."""
    return JobSpec(
        name="nightly-report",
        type="http",
        function="reports.nightly:build",
        command="echo 'ünïcode ✓'",
        argv=("python", "-m", "reports", "--day", "yesterday"),
        url="https://reports.example.com/build",
        method="POST",
        headers={"Authorization": "Bearer t0ken", "X-Team": "data"},
        body='{"full": true}',
        schedule="30 2 * * *",
        timezone="Europe/Paris",
        parameters={"day": "yesterday", "limit": 10, "ratio": 0.5, "tags": ["a", "b"]},
        tags=("reports", "nightly"),
        depends_on=("0b0f5b8e-7d6e-4c4b-8f49-1f6f2a3b4c5d",),
        timeout=120.5,
        retries=5,
        retry_delay=2.5,
        retry_backoff="fixed",
        max_concurrency=4,
        concurrency_policy="queue",
        priority=-3,
        queue="reports",
        enabled=False,
        catchup=True,
        non_retryable_exit_codes=(2, 64, -9),
        description="Builds the nightly report.",
    )


def v1_payloads() -> list[Payload]:
    """One payload per event type, every field set to a non-default value."""
    return [
        JobCreated(spec=v1_spec()),
        JobUpdated(spec=v1_spec(), changed_fields=("schedule", "retries")),
        JobDeleted(reason="retired"),
        JobPaused(reason="maintenance window"),
        JobResumed(reason="maintenance over"),
        RunRequested(
            trigger="backfill",
            scheduled_for=AT,
            parameters={"day": "2024-03-30", "nested": {"x": [1, None, True]}},
            idempotency_key="backfill-2024-03-30",
            upstream_run_id="5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
        ),
        RunQueued(queue="reports", priority=7),
        RunSkipped(reason="overlap", detail="run 42 still running"),
        RunStarted(worker_id="worker-a:1234", lease_token=2**40 + 7),
        RunSucceeded(
            worker_id="worker-a:1234",
            lease_token=2**40 + 7,
            duration_ms=61_250,
            exit_code=0,
            stdout="done\n",
            stderr="warning: slow\n",
            result={"rows": 1200, "files": ["a.csv", "b.csv"]},
        ),
        RunFailed(
            worker_id="worker-a:1234",
            lease_token=9,
            duration_ms=1_500,
            error="exit code 3",
            exit_code=3,
            stdout="partial\n",
            stderr="Traceback ...\n",
        ),
        RunTimedOut(
            timeout=120.5,
            worker_id="worker-b:99",
            lease_token=10,
            duration_ms=120_500,
            stdout="tick\n",
            stderr="killed\n",
        ),
        RunLost(reason="lease expired", worker_id="worker-c:7", lease_token=11),
        RunRetryScheduled(next_attempt=3, retry_at=LATER, delay_ms=4_000),
        RunDeadLettered(reason="retries exhausted", attempts=6),
        RunCancelRequested(reason="user asked"),
        RunCancelled(
            reason="user asked",
            worker_id="worker-a:1234",
            lease_token=12,
            stdout="started\n",
            stderr="SIGTERM\n",
        ),
        WorkerRegistered(
            worker_id="worker-a:1234",
            hostname="host-a",
            pid=1234,
            tags=("gpu", "eu"),
            concurrency=8,
        ),
        WorkerDeregistered(worker_id="worker-a:1234", reason="shutdown"),
        WorkerLost(worker_id="worker-c:7", last_heartbeat_at=LATER),
    ]


def v2_spec() -> JobSpec:
    """v1's spec with the fields v2 added set too."""
    return dataclasses.replace(v1_spec(), json_body={"full": True, "days": [1, 2]})


def v2_payloads() -> list[Payload]:
    """v1's payloads with v2's new fields set, and v2's new payload types."""
    payloads: list[Payload] = []
    for old in v1_payloads():
        payload: Payload = old
        if isinstance(old, JobCreated | JobUpdated):
            payload = dataclasses.replace(old, spec=v2_spec())
        elif isinstance(old, RunFailed):
            payload = dataclasses.replace(old, retryable=False)
        payloads.append(payload)
        if isinstance(payload, RunRetryScheduled):
            payloads.append(RunRetryRequested(next_attempt=4, reason="retried by hand"))
    return payloads


def v3_spec() -> JobSpec:
    """v2's spec with the fields v3 added set too."""
    return dataclasses.replace(v2_spec(), secret_headers={"Authorization": "REPORTS_TOKEN"})


def v3_payloads() -> list[Payload]:
    """v2's payloads with v3's new fields set, and v3's token payloads."""
    payloads: list[Payload] = []
    for old in v2_payloads():
        payload: Payload = old
        if isinstance(old, JobCreated | JobUpdated):
            payload = dataclasses.replace(old, spec=v3_spec())
        payloads.append(payload)
    payloads.append(
        TokenCreated(name="alice", role="operator", token_hash="ab" * 32, expires_at=LATER)
    )
    payloads.append(TokenRevoked(name="alice", reason="left the team"))
    return payloads


def v4_spec() -> JobSpec:
    """v3's spec with the fields v4 added set too (unlimited concurrency, the thread pool)."""
    return dataclasses.replace(v3_spec(), max_concurrency=None, pool="thread")


def v4_payloads() -> list[Payload]:
    """v3's payloads with v4's new spec fields set."""
    payloads: list[Payload] = []
    for old in v3_payloads():
        payload: Payload = old
        if isinstance(old, JobCreated | JobUpdated):
            payload = dataclasses.replace(old, spec=v4_spec())
        payloads.append(payload)
    return payloads


def v5_spec() -> JobSpec:
    """v4's spec with the fields v5 added set too (parameter schema, hooks)."""
    return dataclasses.replace(
        v4_spec(),
        parameters_schema={
            "type": "object",
            "properties": {"recipients": {"type": "array", "items": {"type": "string"}}},
            "required": ["recipients"],
        },
        on_success=Hook(url="https://hooks.example.com/ok", secret="HOOK_KEY"),
        on_failure=Hook(url="https://hooks.example.com/failed", secret="HOOK_KEY"),
        on_dead_letter=Hook(url="https://hooks.example.com/dead", secret="PAGER_KEY"),
    )


def v5_payloads() -> list[Payload]:
    """v4's payloads with v5's new spec fields set, and v5's hook deliveries."""
    payloads: list[Payload] = []
    for old in v4_payloads():
        payload: Payload = old
        if isinstance(old, JobCreated | JobUpdated):
            payload = dataclasses.replace(old, spec=v5_spec())
        elif isinstance(old, RunRequested):
            payload = dataclasses.replace(old, traceparent=TRACEPARENT)
        payloads.append(payload)
    outcome = "e0000000-0000-4000-8000-000000000009"
    payloads.append(
        HookDelivered(
            hook="on_failure",
            url="https://hooks.example.com/failed",
            outcome_event_id=outcome,
            attempt=2,
            status_code=204,
            duration_ms=31,
        )
    )
    payloads.append(
        HookDeliveryFailed(
            hook="on_failure",
            url="https://hooks.example.com/failed",
            outcome_event_id=outcome,
            attempt=1,
            error="503 Service Unavailable",
            status_code=503,
            will_retry=False,
        )
    )
    return payloads


def samples_of(payloads: list[Payload], *, caller: bool = False) -> dict[str, Event]:
    """Golden events by type name, every envelope field set."""
    samples = {}
    for number, payload in enumerate(payloads):
        is_worker = type(payload).__name__.startswith(("Worker", "Token"))
        samples[type(payload).__name__] = Event(
            payload=payload,
            occurred_at=AT,
            actor="alice" if caller else "scheduler",
            job_id=None if is_worker else JOB_ID,
            run_id=None if is_worker else RUN_ID,
            attempt=None if is_worker else 2,
            correlation_id="c0ffee00-0000-4000-8000-000000000001",
            causation_id=f"00000000-0000-4000-8000-{number:012d}",
            event_id=f"e0000000-0000-4000-8000-{number:012d}",
            actor_role="operator" if caller else None,
            request_id=f"r0000000-0000-4000-8000-{number:012d}" if caller else None,
        )
    return samples


def v1_samples() -> dict[str, Event]:
    return samples_of(v1_payloads())


def v2_samples() -> dict[str, Event]:
    return samples_of(v2_payloads())


def v3_samples() -> dict[str, Event]:
    return samples_of(v3_payloads(), caller=True)


def v4_samples() -> dict[str, Event]:
    return samples_of(v4_payloads(), caller=True)


def v5_samples() -> dict[str, Event]:
    return samples_of(v5_payloads(), caller=True)


SAMPLES = {
    "v1": v1_samples,
    "v2": v2_samples,
    "v3": v3_samples,
    "v4": v4_samples,
    "v5": v5_samples,
}
latest_payloads = v5_payloads
latest_samples = v5_samples


def main() -> int:
    version = schema_versions(SCHEMA_ROOT)[-1]
    if version not in SAMPLES:
        sys.stderr.write(f"no samples for schema {version}: add {version}_samples() to SAMPLES\n")
        return 1
    codec = EventCodec.from_versions(SCHEMA_ROOT)
    out = GOLDEN_ROOT / version
    out.mkdir(exist_ok=True)
    written = 0
    for name, event in SAMPLES[version]().items():
        path = out / f"{name}.bin"
        if path.exists():
            continue
        path.write_bytes(codec.encode(event))
        written += 1
    sys.stdout.write(f"wrote {written} golden events to {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
