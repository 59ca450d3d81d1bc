"""``GET /api/health`` (is Chronolog doing its job?) and ``GET /api/health/live`` (does
this API process answer?).

``/api/health`` gathers facts from the log, the read model and the lease store, and the
pure ``problems`` decides from them: 200 when there are none, 503 with the list when
something is down (no scheduler leads, a queue with queued runs and no live worker, a
projector far behind or stalled). ``/api/health/live`` is for process supervisors and
load balancers: 200 whenever the API answers, whatever the rest is doing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.context import ApiContext
from api.dependencies import Context
from api.schemas import ErrorBody, HealthOut, LiveOut
from leases.dispatch import SCHEDULER_LEADER_KEY, worker_lease_key
from projector import api_reads


@dataclass(frozen=True, slots=True)
class HealthLimits:
    max_lag: int  # events the projector may be behind the log
    stall_after: float  # seconds without progress, with events to apply, that mean stalled


@dataclass(frozen=True, slots=True)
class HealthFacts:
    lag: int  # events in the log not yet applied
    unchanged_for: float  # seconds the projector's checkpoints have not moved
    leader: str | None  # the scheduler node holding the leader lease
    queued: Mapping[str, int]  # queue -> runs waiting in it
    serving: Mapping[str, int]  # queue -> live workers taking from it


def problems(facts: HealthFacts, limits: HealthLimits) -> list[str]:
    """What is wrong, one sentence each; empty when Chronolog is healthy."""
    found = []
    if facts.leader is None:
        found.append("no scheduler leads: the leader lease is free")
    for queue, count in sorted(facts.queued.items()):
        if count > 0 and facts.serving.get(queue, 0) == 0:
            found.append(f"queue {queue!r} has {count} queued runs and no live worker")
    if facts.lag > limits.max_lag:
        found.append(
            f"the projector is {facts.lag} events behind the log "
            f"(more than CHRONOLOG_HEALTH_MAX_LAG={limits.max_lag})"
        )
    elif facts.lag > 0 and facts.unchanged_for >= limits.stall_after:
        found.append(
            f"the projector has applied nothing for {facts.unchanged_for:.0f} s "
            f"with {facts.lag} events to apply"
        )
    return found


class ProgressWatch:
    """How long the checkpoints this API process saw have stayed the same.

    Kept per process: every replica judges a stall from its own observations (see
    docs/decisions.md), so a replica needs two looks ``stall_after`` apart to see one.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[int, int] | None = None
        self._since = 0.0

    def unchanged_for(self, checkpoints: Mapping[int, int]) -> float:
        now = self._clock()
        with self._lock:
            if checkpoints != self._seen:
                self._seen, self._since = dict(checkpoints), now
            return now - self._since


def _serving(ctx: ApiContext, session: Session) -> tuple[dict[str, int], int, int]:
    """Live workers per queue, and how many workers are registered and alive."""
    workers = api_reads.list_workers(session)
    live = ctx.leases.inspect([worker_lease_key(s.worker.id) for s in workers])
    serving: dict[str, int] = {}
    alive = [s.worker for s in workers if worker_lease_key(s.worker.id) in live]
    for worker in alive:
        for queue in worker.tags:
            serving[queue] = serving.get(queue, 0) + 1
    return serving, len(workers), len(alive)


router = APIRouter(tags=["system"])  # no token needed: probes for supervisors


@router.get("/api/health/live", response_model=LiveOut)
async def live(request: Request) -> dict[str, Any]:
    """200 whenever this API process answers (for supervisors and load balancers)."""
    return {"status": "ok", "version": request.app.version}


UNHEALTHY = "the same report when something is wrong (its problems say what)"
FAILED = "the read-model database failed (not a report: the usual error body)"


@router.get(
    "/api/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut | ErrorBody, "description": f"{UNHEALTHY}; or {FAILED}"}},
)
def health(request: Request, ctx: Context) -> JSONResponse:
    """Is Chronolog doing its job? 503 naming what is wrong when not."""
    limits = HealthLimits(ctx.health_max_lag, ctx.health_stall_after)
    watch: ProgressWatch = request.app.state.progress_watch
    checkpoints = ctx.progress.checkpoints()
    ends = {p: marks.high for p, marks in ctx.log.all_watermarks().items()}
    lag = sum(end - checkpoints.get(p, 0) for p, end in ends.items())
    lease = ctx.leases.inspect([SCHEDULER_LEADER_KEY]).get(SCHEDULER_LEADER_KEY)
    with Session(ctx.engine) as session:
        rejected = api_reads.count_unprojectable(session)
        queued = api_reads.queued_by_queue(session)
        serving, registered, alive = _serving(ctx, session)
    facts = HealthFacts(
        lag, watch.unchanged_for(checkpoints), lease.owner if lease else None, queued, serving
    )
    found = problems(facts, limits)
    body = {
        "status": "unhealthy" if found else "ok",
        "version": request.app.version,
        "problems": found,
        "event_log": {"partitions": ctx.log.partitions, "events": sum(ends.values())},
        "projector": {"lag": lag, "rejected": rejected},
        "scheduler": {"leader": facts.leader},
        "workers": {"registered": registered, "alive": alive},
        "queues": {
            queue: {"queued": queued.get(queue, 0), "live_workers": serving.get(queue, 0)}
            for queue in sorted(queued.keys() | serving.keys())
        },
        "live_output": {"streams": ctx.live_streams.open, "limit": ctx.live_stream_limit},
    }
    return JSONResponse(body, status_code=503 if found else 200)
