"""When the OTEL_* variables turn tracing on, and what is said when they cannot."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from chronolog import tracing


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
