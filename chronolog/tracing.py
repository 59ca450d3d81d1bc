"""OpenTelemetry traces: off unless the standard ``OTEL_*`` variables ask for them.

A run's trace begins where the run is asked for (the API request that triggers it, or
the scheduler's fire), continues through the dispatch, and ends with the execution on a
worker; the W3C ``traceparent`` travels in ``RunRequested``, the runs table and the
dispatch ticket. Roles call the one-liners below. When tracing is off, ``_tracer`` is
None and every helper returns at once: nothing of ``opentelemetry`` is imported (the
package is the optional extra ``chronolog[otel]``).

Standard library only at import time: prefork children import this module.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

    from events.model import Event

log = logging.getLogger(__name__)

INSTRUMENTATION: Final = "chronolog"
INSTALL_HINT: Final = "pip install 'chronolog[otel]'"
EXPORTERS: Final = frozenset({"otlp", "console"})
# Attributes on every span of a run.
RUN_ID: Final = "chronolog.run_id"
JOB_ID: Final = "chronolog.job_id"
ATTEMPT: Final = "chronolog.attempt"
STATUS: Final = "chronolog.status"


class _Switch:
    # The module-level switch: a tracer once ``configure`` or ``enable`` turned tracing on.
    tracer: Tracer | None = None
    provider: TracerProvider | None = None


def requested(env: Mapping[str, str]) -> bool:
    """Whether ``env`` asks for traces: an exporter other than ``none``, or an OTLP
    endpoint, and the SDK not disabled. ``OTEL_SERVICE_NAME`` alone does not (it names
    the service for metrics and logs too)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = exporter_names(env)
    if exporters:
        return exporters != ["none"]
    return any(env.get(name) for name in _ENDPOINTS)


_ENDPOINTS: Final = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def exporter_names(env: Mapping[str, str]) -> list[str]:
    """``OTEL_TRACES_EXPORTER``'s comma-separated names, lower-cased (empty if unset)."""
    raw = env.get("OTEL_TRACES_EXPORTER", "")
    return [name.strip().lower() for name in raw.split(",") if name.strip()]


def enabled() -> bool:
    return _Switch.tracer is not None


def configure(role: str, env: Mapping[str, str] = os.environ) -> bool:
    """Turn tracing on for this process if ``env`` asks for it; whether it is on.

    Called once at a role's start. The service is named ``chronolog-<role>`` unless
    ``OTEL_SERVICE_NAME`` (or ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``) names it.
    """
    if _Switch.tracer is not None or not requested(env):
        return _Switch.tracer is not None
    unknown = [name for name in exporter_names(env) if name not in EXPORTERS | {"none"}]
    if unknown:
        log.warning(
            "OTEL_TRACES_EXPORTER names exporters Chronolog does not ship; tracing is off "
            "(use otlp or console)",
            extra={"exporters": ",".join(unknown)},
        )
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        exporters = _exporters(env)
    except ImportError:
        log.warning(
            "OTEL_* variables ask for traces but OpenTelemetry is not installed; tracing "
            f"is off (install it with: {INSTALL_HINT})"
        )
        return False
    named = "OTEL_SERVICE_NAME" in env or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(
        resource=Resource.create({} if named else {"service.name": f"chronolog-{role}"})
    )
    for exporter in exporters:
        provider.add_span_processor(_batching(exporter))
    trace.set_tracer_provider(provider)  # job code's get_tracer() uses it too
    enable(provider)
    log.info(
        "OpenTelemetry tracing is on",
        extra={
            "role": role,
            "exporters": ",".join(exporter_names(env) or ["otlp"]),
            "service": provider.resource.attributes.get("service.name"),
        },
    )
    return True


def _exporters(env: Mapping[str, str]) -> list[SpanExporter]:
    names = [name for name in exporter_names(env) if name != "none"] or ["otlp"]
    exporters: list[SpanExporter] = []
    if "otlp" in names:
        # OTLP over HTTP/protobuf; it reads the endpoint, headers and timeout from OTEL_*.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporters.append(OTLPSpanExporter())
    if "console" in names:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporters.append(ConsoleSpanExporter())
    return exporters


def _batching(exporter: SpanExporter) -> SpanProcessor:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(exporter)  # OTEL_BSP_* tune it


def enable(provider: TracerProvider) -> None:
    """Trace with ``provider`` (``configure`` calls this; tests pass one of their own)."""
    _Switch.provider = provider
    _Switch.tracer = provider.get_tracer(INSTRUMENTATION)


def disable() -> None:
    """Tracing off again (tests); the provider is flushed first."""
    flush()
    _Switch.tracer = None
    _Switch.provider = None


def flush() -> None:
    """Export what is buffered (before a process exits without running ``atexit``)."""
    if _Switch.provider is not None:
        _Switch.provider.force_flush()


@contextmanager
def span(
    name: str, parent: str | None = None, attributes: Mapping[str, Any] | None = None
) -> Iterator[Span | None]:
    """A span, current for the block, child of the ``parent`` traceparent (else of the
    current span, else a new trace); None when tracing is off."""
    tracer = _Switch.tracer
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(
        name, context=_context_of(parent), attributes=dict(attributes or {})
    ) as current:
        yield current


def traceparent(current: Span | None) -> str | None:
    """The W3C traceparent of ``current`` (None for None)."""
    if current is None:
        return None
    context = current.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def mark(current: Span | None, key: str, value: str | int) -> None:
    """Set an attribute on ``current`` (a no-op when tracing is off)."""
    if current is not None:
        current.set_attribute(key, value)


def hop(name: str, parent: str | None, run_id: str, job_id: str, attempt: int) -> str | None:
    """A short span for a step of a run between processes (the dispatch), child of
    ``parent``; the traceparent the next step continues from. With tracing off here, or
    no trace to continue, ``parent`` is handed on unchanged."""
    if _Switch.tracer is None or parent is None:
        return parent
    attributes = {RUN_ID: run_id, JOB_ID: job_id, ATTEMPT: attempt}
    with span(name, parent, attributes) as current:
        return traceparent(current)


def fired(events: list[Event]) -> list[Event]:
    """The scheduler's decided events, each run it requests (a schedule's fire, a
    dependency) starting a trace with a ``chronolog.fire`` span; unchanged when off."""
    if _Switch.tracer is None:
        return events
    from events.model import RunRequested

    return [
        _traced_request(event) if isinstance(event.payload, RunRequested) else event
        for event in events
    ]


def _traced_request(event: Event) -> Event:
    from events.model import RunRequested

    payload = event.payload
    assert isinstance(payload, RunRequested) and event.run_id is not None
    attributes = {
        RUN_ID: event.run_id,
        JOB_ID: event.job_id or "",
        "chronolog.trigger": payload.trigger,
    }
    with span("chronolog.fire", None, attributes) as current:
        traced = dataclasses.replace(payload, traceparent=traceparent(current))
    return dataclasses.replace(event, payload=traced)


def _context_of(parent: str | None) -> Any:
    if parent is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": parent})


@contextmanager
def continued(parent: str | None) -> Iterator[None]:
    """Make ``parent`` the current trace context for the block, so spans job code starts
    with ``opentelemetry.trace.get_tracer(...)`` are its children (a job's process).

    The worker sends a traceparent only when it traces, so a child that gets None
    imports nothing. With one, the child sets tracing up from the ``OTEL_*`` variables it
    inherited (once), to export the job's own spans.
    """
    if parent is None:
        yield
        return
    configure("job")
    from opentelemetry import context

    token = context.attach(_context_of(parent))
    try:
        yield
    finally:
        context.detach(token)
