"""The diff ``chronolog apply`` shows and applies: pure, from specs and API answers."""

from __future__ import annotations

from typing import Any

from chronolog.apply_plan import Change, diff, plan


def registered(**fields: Any) -> dict[str, Any]:
    """A job as ``GET /api/jobs`` shows a python job with every default."""
    job: dict[str, Any] = {
        "id": "job-1", "name": "report", "type": "python", "function": "reports:run",
        "pool": "process", "description": None, "schedule": None, "timezone": "UTC",
        "parameters": {}, "parameters_schema": None, "tags": ["from-code"], "depends_on": [],
        "timeout": 3600.0, "retries": 3, "retry_delay": 1.0, "retry_backoff": "exponential",
        "max_concurrency": 1, "concurrency_policy": "forbid", "priority": 0,
        "queue": "default", "enabled": True, "catchup": False, "non_retryable_exit_codes": [],
        "command": None, "url": None, "method": None, "headers": None, "body": None,
    }  # fmt: skip
    return {**job, **fields}


SPEC = {"name": "report", "type": "python", "function": "reports:run"}


def test_the_same_job_is_unchanged() -> None:
    result = plan([SPEC], [registered()])
    assert (result.create, result.update, result.unchanged) == ([], [], ["report"])
    assert not result.changes_anything


def test_a_field_left_out_of_the_code_goes_back_to_its_default() -> None:
    [update] = plan([SPEC], [registered(retries=5, schedule="@daily")]).update
    assert update.changes == (Change("schedule", "@daily", None), Change("retries", 5, 3))
    assert update.body == {"schedule": None, "retries": 3}


def test_a_paused_job_stays_paused_unless_the_code_says_enabled() -> None:
    assert plan([SPEC], [registered(enabled=False)]).unchanged == ["report"]
    [update] = plan([{**SPEC, "enabled": True}], [registered(enabled=False)]).update
    assert update.body == {"enabled": True}


def test_the_marker_tag_is_added_and_only_marked_jobs_are_pruned() -> None:
    by_hand = registered(name="by-hand", tags=["reports"])
    gone = registered(name="gone")
    result = plan([SPEC], [registered(tags=[]), by_hand, gone])
    [update] = result.update
    assert update.body == {"tags": ["from-code"]}
    assert result.prune == ["gone"]
    assert plan([SPEC], [registered(), gone], marker="team-a").prune == []


def test_http_defaults_and_empty_maps_compare_as_the_api_shows_them() -> None:
    spec = {"name": "ping", "type": "http", "url": "https://example.com/"}
    job = registered(name="ping", type="http", url="https://example.com/", method="GET",
                     headers={}, function=None, pool=None)  # fmt: skip
    assert diff({**spec, "tags": ["from-code"]}, job) == ()


def test_new_jobs_are_created_after_the_new_jobs_they_depend_on() -> None:
    send = {"name": "send", "type": "python", "function": "m:send", "depends_on": ["build"]}
    build = {"name": "build", "type": "python", "function": "m:build"}
    assert [s["name"] for s in plan([send, build], []).create] == ["build", "send"]


def test_fields_a_newer_api_shows_are_compared_when_the_code_sets_them() -> None:
    hook = {"url": "https://hooks.example.com/", "secret": None}
    [update] = plan([{**SPEC, "on_failure": hook}], [registered(on_failure=None)]).update
    assert update.body == {"on_failure": hook}
