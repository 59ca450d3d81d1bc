"""Metrics per role, from settings: what each process observes and where it is served.

The API serves ``/metrics`` itself (``api.metrics_route``). A worker, scheduler or
projector started alone serves its own on ``--metrics-port``. ``chronolog up`` has its
children write to one directory that its API's ``/metrics`` adds up
(``metrics.exposition``), so one scrape of ``up`` covers every process it runs.
"""

from __future__ import annotations

import logging
import os

from chronolog.settings import Settings, SettingsError
from metrics.hooks import NO_METRICS, Metrics

log = logging.getLogger(__name__)

# metrics.exposition.MULTIPROC_ENV, named here without importing prometheus-client.
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def role_metrics(settings: Settings, *, served: bool = False) -> Metrics:
    """Prometheus instruments for this process, or the no-op hooks when metrics are off
    or nobody could read them: a role started alone without ``--metrics-port`` (the
    worker of a benchmark, say) does not pay prometheus-client's ~12 MiB for nothing.
    ``served``: this process serves ``/metrics`` itself (the API)."""
    readable = served or settings.metrics_port is not None or bool(os.environ.get(_MULTIPROC_ENV))
    if not settings.metrics or not readable:
        return NO_METRICS
    from prometheus_client import CollectorRegistry

    from metrics.prometheus import PrometheusMetrics

    return PrometheusMetrics(CollectorRegistry())


def check_metrics_port(settings: Settings) -> None:
    """A port asked for while metrics are off is a mistake worth stopping for."""
    if settings.metrics_port is not None and not settings.metrics:
        raise SettingsError(
            "--metrics-port (or CHRONOLOG_METRICS_PORT) needs metrics on; "
            "unset CHRONOLOG_METRICS=off or drop the port"
        )


def serve_role_metrics(settings: Settings, metrics: Metrics) -> None:
    """Serve this role's metrics on ``settings.metrics_port``, if one is set.

    Not in a child of ``chronolog up``: there the API's ``/metrics`` has them.
    """
    check_metrics_port(settings)
    if settings.metrics_port is None or not metrics.enabled:
        return
    from metrics.exposition import multiprocess_dir, registry_to_serve, serve_on_port
    from metrics.prometheus import PrometheusMetrics

    assert isinstance(metrics, PrometheusMetrics), "enabled metrics are Prometheus's"
    if multiprocess_dir() is not None:
        log.info("metrics go to chronolog up's /metrics, not to a port of their own")
        return
    registry = registry_to_serve(metrics.registry)
    serve_on_port(registry, settings.metrics_host, settings.metrics_port)


def start_up_metrics(settings: Settings) -> None:
    """``chronolog up``: this process and its children share one metrics directory."""
    if not settings.metrics:
        return
    from metrics.exposition import start_multiprocess

    start_multiprocess(settings.data_dir / "metrics")
