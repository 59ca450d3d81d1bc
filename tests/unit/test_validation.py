from datetime import UTC, datetime

import pytest

from api.commands import build_spec
from api.validation import check_spec, find_cycle
from events.model import JobSpec

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def fields_of(spec: JobSpec) -> list[str]:
    return [p.field for p in check_spec(spec, NOW)]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (JobSpec(name="a", type="python"), "function"),
        (JobSpec(name="a", type="python", function="nodots"), "function"),
        (JobSpec(name="a", type="python", function="mod.1bad"), "function"),
        (JobSpec(name="a", type="shell"), "command"),
        (JobSpec(name="a", type="http"), "url"),
        (JobSpec(name="a", type="http", url="ftp://x/y", method="GET"), "url"),
        (JobSpec(name="a", type="http", url="https://x/y", method="FETCH"), "method"),
        (JobSpec(name="a", type="python", function="m.f", command="ls"), "command"),
        (JobSpec(name="a", type="python", function="m.f", argv=("ls",)), "command"),
        (JobSpec(name="a", type="shell", command="ls", url="https://x"), "url"),
        (JobSpec(name="a", type="python", function="m.f", schedule="61 * * * *"), "schedule"),
        (
            JobSpec(
                name="a", type="python", function="m.f", schedule="@daily", timezone="Mars/Olympus"
            ),
            "timezone",
        ),
        (
            JobSpec(name="a", type="python", function="m.f", schedule="2020-01-01T00:00:00Z"),
            "schedule",
        ),
        (
            JobSpec(name="a", type="python", function="m.f", parameters={"x": "y" * 300_000}),
            "parameters",
        ),
    ],
)
def test_bad_spec_names_the_field(spec: JobSpec, field: str) -> None:
    assert field in fields_of(spec)


@pytest.mark.parametrize(
    "spec",
    [
        JobSpec(name="a", type="python", function="reports.generate_daily", schedule="0 9 * * *"),
        JobSpec(name="a", type="python", function="pkg.reports:generate", schedule="every 5m"),
        JobSpec(name="a", type="shell", command="echo hi"),
        JobSpec(name="a", type="shell", argv=("echo", "hi"), schedule="2030-01-01T09:00:00Z"),
        JobSpec(name="a", type="http", url="https://example.com/hook", method="POST"),
    ],
)
def test_good_spec_has_no_problems(spec: JobSpec) -> None:
    assert check_spec(spec, NOW) == []


def test_a_one_time_schedule_in_the_past_is_fine_when_unchanged() -> None:
    spec = JobSpec(name="a", type="shell", command="x", schedule="2020-01-01T00:00:00Z")
    assert check_spec(spec, NOW, schedule_changed=False) == []


def test_build_spec_maps_command_forms_and_http_defaults() -> None:
    assert build_spec({"name": "a", "type": "shell", "command": ["ls", "-l"]}, None).argv == (
        "ls",
        "-l",
    )
    assert build_spec({"name": "a", "type": "shell", "command": "ls -l"}, None).command == "ls -l"
    http = build_spec({"name": "a", "type": "http", "url": "https://x", "method": "post"}, None)
    assert http.method == "POST"
    assert build_spec({"name": "a", "type": "http", "url": "https://x"}, None).method == "GET"


def test_build_spec_overlays_a_base_and_null_resets_to_default() -> None:
    base = JobSpec(name="a", type="python", function="m.f", retries=7, tags=("x",))
    spec = build_spec({"retries": None, "tags": ["y", "y", "z"]}, base)
    assert spec.retries == 3
    assert spec.tags == ("y", "z")
    assert spec.function == "m.f"


@pytest.mark.parametrize(
    ("graph", "job", "deps", "cycle"),
    [
        ({}, "a", [], None),
        ({}, "a", ["a"], ["a", "a"]),
        ({"b": {"c"}}, "a", ["b"], None),
        ({"b": {"a"}}, "a", ["b"], ["a", "b", "a"]),
        ({"b": {"c"}, "c": {"a"}}, "a", ["b"], ["a", "b", "c", "a"]),
        # the job's old edges are replaced, not added to
        ({"a": {"b"}, "b": {"c"}}, "c", ["x"], None),
        ({"a": {"b"}, "b": {"c"}}, "c", ["a"], ["c", "a", "b", "c"]),
        # diamonds are fine
        ({"b": {"d"}, "c": {"d"}}, "a", ["b", "c"], None),
    ],
)
def test_find_cycle(
    graph: dict[str, set[str]], job: str, deps: list[str], cycle: list[str] | None
) -> None:
    assert find_cycle(graph, job, deps) == cycle
