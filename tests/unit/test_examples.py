"""The README's example job modules in ``examples/`` run and return JSON results."""

from __future__ import annotations

import importlib.util
import json
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a top-level module, as a worker's app dir would."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_daily_report_prints_its_progress_and_returns_a_json_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = load("reports").generate_daily(recipients=["team@example.com"])
    assert json.loads(json.dumps(result)) == {"recipients": ["team@example.com"], "sections": 3}
    assert capsys.readouterr().out.endswith("Report generated\n")


def test_send_report_names_its_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHRONOLOG_RUN_ID", "run-1")
    assert load("mailer").send_report() == {"sent_by": "run-1"}
    assert "Report sent (run run-1)" in capsys.readouterr().out


def test_the_report_as_code_is_a_job_and_still_a_function() -> None:
    generate_daily = load("reports_code").generate_daily
    assert generate_daily(["a@example.com"], date(2026, 12, 3)) == {"sent": 1, "day": "2026-12-03"}
    spec = generate_daily.spec
    assert spec["name"] == "generate_daily" and spec["function"] == "reports_code:generate_daily"
    assert spec["parameters_schema"]["required"] == ["recipients"]
