"""When the OTEL_* variables turn tracing on, what is said when they cannot, and the
trace context of a run that reconciliation pushes again."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chronolog import tracing
from events.model import JobSpec
from projector.scheduler_reads import QueuedRun
from scheduler.dispatch import repush_tickets

SPEC = JobSpec(name="j", type="shell", command="true")


@pytest.fixture(autouse=True)
def tracing_off_after() -> Iterator[None]:
    yield
    tracing.disable()


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "billing"}, False),  # names a service, asks for nothing
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console, otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_requested_only_by_an_exporter_or_an_endpoint(
    env: dict[str, str], on: bool
) -> None:
    assert tracing.requested(env) is on


def test_nothing_asked_leaves_tracing_off_and_the_helpers_inert() -> None:
    assert tracing.configure("worker", {}) is False
    assert not tracing.enabled()
    with tracing.span("chronolog.execute", "00-" + "1" * 32 + "-" + "2" * 16 + "-01") as span:
        assert span is None
    parent = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    assert tracing.hop("chronolog.dispatch", parent, "run-1", "job-1", 1) == parent


def test_an_exporter_chronolog_does_not_ship_is_refused_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="chronolog.tracing"):
        assert tracing.configure("api", {"OTEL_TRACES_EXPORTER": "zipkin"}) is False
    assert not tracing.enabled()
    assert "use otlp or console" in caplog.text
    assert caplog.records[0].exporters == "zipkin"  # type: ignore[attr-defined]


def test_without_the_extra_one_warning_names_the_install_command(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    with caplog.at_level(logging.WARNING, logger="chronolog.tracing"):
        assert tracing.configure("worker", {"OTEL_TRACES_EXPORTER": "otlp"}) is False
    assert not tracing.enabled()
    [warning] = caplog.records
    assert "pip install 'chronolog[otel]'" in warning.getMessage()


def test_configured_tracing_says_so_and_names_the_service_after_the_role(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="chronolog.tracing"):
        assert tracing.configure("scheduler", {"OTEL_TRACES_EXPORTER": "console"}) is True
    assert tracing.enabled()
    [line] = caplog.records
    assert line.getMessage() == "OpenTelemetry tracing is on"
    assert (line.service, line.exporters) == ("chronolog-scheduler", "console")  # type: ignore[attr-defined]


PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def repushed(traceparent: str | None) -> str | None:
    run = QueuedRun("run-1", "job-1", 2, "default", 0, None, None, traceparent)
    [(_, _, ticket)] = repush_tickets([run], {"job-1": SPEC}, {})
    return ticket.traceparent


def test_a_run_reconciliation_pushes_again_keeps_its_trace() -> None:
    assert repushed(PARENT) == PARENT  # tracing off here: handed on as it is
    assert repushed(None) is None
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    ticket_parent = repushed(PARENT)
    [dispatch] = exporter.get_finished_spans()
    context = dispatch.get_span_context()
    assert context is not None and dispatch.parent is not None
    assert (dispatch.name, f"{context.trace_id:032x}") == ("chronolog.dispatch", PARENT[3:35])
    assert f"{dispatch.parent.span_id:016x}" == PARENT[36:52]
    assert ticket_parent == f"00-{PARENT[3:35]}-{context.span_id:016x}-01"
    assert dispatch.attributes is not None and dispatch.attributes[tracing.ATTEMPT] == 2
