"""The Prometheus instruments behind ``metrics.hooks.Metrics``.

Names follow Prometheus conventions: the ``chronolog_`` prefix, base units (seconds),
``_total`` on counters. Labels are bounded except ``job``: each job name makes its own
series (a run counter per status and a duration histogram), so thousands of jobs mean
thousands of series; lateness is labelled by queue only, for that reason.

In ``chronolog up``'s processes prometheus-client keeps every value in a file of a
shared directory (multiprocess mode, ``metrics.exposition``); the gauges say how their
processes' values add up there (``livesum``: the sum over live processes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from metrics.hooks import Metrics

# From a no-op job (milliseconds) to the default one-hour timeout.
RUN_SECONDS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# Trigger -> start is milliseconds when workers keep up, minutes when they do not.
LATENESS_SECONDS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
APPEND_SECONDS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class PrometheusMetrics(Metrics):
    """Records the hooks' observations in instruments registered on ``registry``."""

    enabled = True

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._runs = Counter(
            "chronolog_runs",
            "Run attempts whose outcome a worker reported, by job name, queue and status "
            "(succeeded, failed, timed_out, cancelled)",
            ["job", "queue", "status"],
            registry=registry,
        )
        self._duration = Histogram(
            "chronolog_run_duration_seconds",
            "How long run attempts ran on a worker, by job name and queue",
            ["job", "queue"],
            buckets=RUN_SECONDS,
            registry=registry,
        )
        self._lateness = Histogram(
            "chronolog_run_lateness_seconds",
            "Start of a scheduled run minus its scheduled fire time, by queue",
            ["queue"],
            buckets=LATENESS_SECONDS,
            registry=registry,
        )
        self._busy = Gauge(
            "chronolog_worker_busy_slots",
            "Runs running on workers now",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._slots = Gauge(
            "chronolog_worker_slots",
            "Runs workers can run at once (their concurrency), summed over workers",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._append = Histogram(
            "chronolog_event_log_append_seconds",
            "Time for an append to the event log to become durable",
            buckets=APPEND_SECONDS,
            registry=registry,
        )
        self._appended = Counter(
            "chronolog_events_appended", "Events appended to the event log", registry=registry
        )
        self._applied = Counter(
            "chronolog_projector_events_applied",
            "Events the projector applied to the read model",
            registry=registry,
        )
        self._decisions = Counter(
            "chronolog_scheduler_decisions",
            "Events the scheduler appended, by event type (RunQueued, RunSkipped, "
            "RunRetryScheduled, RunDeadLettered, RunLost, ...)",
            ["event"],
            registry=registry,
        )
        self._triggers = Counter(
            "chronolog_api_triggers",
            "Triggers the API answered: created a run, or replayed one an earlier trigger "
            "with the same Idempotency-Key made",
            ["result"],
            registry=registry,
        )

    def run_started(self, queue: str, lateness: float | None) -> None:
        self._busy.inc()
        if lateness is not None:
            self._lateness.labels(queue).observe(max(lateness, 0.0))

    def run_ended(self) -> None:
        self._busy.dec()

    def run_finished(self, job: str, queue: str, status: str, seconds: float | None) -> None:
        self._runs.labels(job, queue, status).inc()
        if seconds is not None:
            self._duration.labels(job, queue).observe(seconds)

    def worker_started(self, slots: int) -> None:
        self._slots.inc(slots)

    def appended(self, seconds: float, events: int) -> None:
        self._append.observe(seconds)
        self._appended.inc(events)

    def applied(self, events: int) -> None:
        self._applied.inc(events)

    def decided(self, counts: Mapping[str, int]) -> None:
        for event, count in counts.items():
            self._decisions.labels(event).inc(count)

    def triggered(self, created: int, replayed: int) -> None:
        if created:
            self._triggers.labels("created").inc(created)
        if replayed:
            self._triggers.labels("replayed").inc(replayed)
