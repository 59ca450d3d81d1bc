"""``GET /metrics``: Prometheus's text format, for every process this API speaks for.

No token, like the health probes: a scraper is a probe. The state gauges (queue depth,
live workers, projector lag) are read here at scrape time from the lease store, the read
model and the log; everything else was observed on the hot paths (``metrics.hooks``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.orm import Session

from api.context import ApiContext
from leases.dispatch import worker_lease_key
from metrics.exposition import registry_to_serve
from metrics.prometheus import PrometheusMetrics
from metrics.state import StateCollector, StateReading
from projector import api_reads

router = APIRouter(tags=["system"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format (version 0.0.4 compatible)."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def registry(ctx: ApiContext) -> CollectorRegistry:
    """What ``/metrics`` renders: this process's (or its ``up``'s) values and the state."""
    assert isinstance(ctx.metrics, PrometheusMetrics), "called only with metrics on"
    return registry_to_serve(ctx.metrics.registry, StateCollector(lambda: read_state(ctx)))


def read_state(ctx: ApiContext) -> StateReading:
    """One look at the lease store, the read model and the log."""
    checkpoints = ctx.progress.checkpoints()
    ends = {p: marks.high for p, marks in ctx.log.all_watermarks().items()}
    lag = sum(max(0, end - checkpoints.get(p, 0)) for p, end in ends.items())
    with Session(ctx.engine) as session:
        queues = api_reads.job_queues(session)
        workers = api_reads.list_workers(session)
    live = ctx.leases.inspect([worker_lease_key(s.worker.id) for s in workers])
    for served in workers:
        queues.update(served.worker.tags)
    return StateReading(
        queue_depths=ctx.leases.queue_depths(sorted(queues)),
        workers_alive=len(live),
        projector_lag=lag,
    )
