"""Job functions of the tracing tests (``tests.jobs.traced:<name>``), run by real workers."""

from __future__ import annotations

import sys


def current_trace() -> dict[str, str]:
    """The trace context this job runs in, and a child span it starts, as job code would."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    with trace.get_tracer("tests.jobs.traced").start_as_current_span("job step") as step:
        inner = step.get_span_context()
    return {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "step_trace_id": f"{inner.trace_id:032x}",
    }


def opentelemetry_modules() -> list[str]:
    """The opentelemetry modules loaded in the process that runs this job."""
    return sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry")


async def current_trace_async() -> dict[str, str]:
    """``current_trace`` from an async job (the async pool's process)."""
    return current_trace()
