"""Jobs as code against a real cluster: ``chronolog apply`` round trips, parameters
checked against the function's signature by the API and converted on a real worker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from chronolog.client import Client, RunFailed, ValidationFailed
from tests.e2e.cluster import Cluster, start_cluster
from tests.jobs import typed_jobs

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("code") / "data", workers=1)
    yield running
    running.stop()


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Client]:
    with Client(cluster.url, cluster.server.token) as api:
        yield api


def apply(cluster: Cluster, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``chronolog apply`` as a user runs it, with the API and token from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOLOG_")}
    env |= {"CHRONOLOG_API_URL": cluster.url, "CHRONOLOG_TOKEN": cluster.server.token}
    command = [sys.executable, "-m", "chronolog", "apply", *args]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, env=env, timeout=60, check=False
    )


def log_size(client: Client) -> int:
    """Events in the whole log (the health answer counts them)."""
    events: int = client._http.get("/api/health").json()["event_log"]["events"]
    return events


REPORTS_V1 = '''
from datetime import date
from chronolog import job

@job(schedule="0 9 * * *", timezone="Europe/Berlin", retries=2, tags=["reports"],
     parameters={"recipients": ["team@example.com"]})
def nightly_report(recipients: list[str], day: date | None = None) -> dict[str, int]:
    """Mail the nightly report."""
    return {"sent": len(recipients)}

@job(name="weekly-cleanup", schedule="0 3 * * 0")
def cleanup(keep_days: int = 30) -> None:
    pass
'''


def test_apply_creates_updates_prunes_and_a_second_apply_appends_nothing(
    cluster: Cluster, client: Client, tmp_path: Path
) -> None:
    source = tmp_path / "nightly_jobs.py"
    source.write_text(textwrap.dedent(REPORTS_V1))
    client.create_job({"name": "by-hand", "type": "shell", "command": "true"})

    dry = apply(cluster, "nightly_jobs.py", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "+ create nightly_report" in dry.stdout and "+ create weekly-cleanup" in dry.stdout
    with pytest.raises(Exception, match="no job"):
        client.get_job("nightly_report")  # a dry run registers nothing

    refused = apply(cluster, "nightly_jobs.py", cwd=tmp_path)  # no terminal, no --yes
    assert refused.returncode == 1 and "pass --yes" in refused.stderr

    created = apply(cluster, "nightly_jobs.py", "--yes", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    job = client.get_job("nightly_report")
    assert job.function == "nightly_jobs:nightly_report"
    assert job.retries == 2 and job.timezone == "Europe/Berlin"
    assert job.tags == ["reports", "from-code"]
    assert job.description == "Mail the nightly report."
    assert job.parameters_schema is not None
    assert job.parameters_schema["required"] == ["recipients"]

    before = log_size(client)
    again = apply(cluster, "nightly_jobs.py", "--yes", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 to create, 0 to update, 2 unchanged, 0 to delete" in again.stdout
    assert log_size(client) == before  # nothing appended

    # One field changed, one job removed from the code: kept until --prune.
    v2 = textwrap.dedent(REPORTS_V1).replace("retries=2", "retries=5")
    source.write_text(v2.split('@job(name="weekly-cleanup"')[0])
    changed = apply(cluster, "nightly_jobs.py", "--yes", cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert "~ update nightly_report\n    retries: 2 -> 5" in changed.stdout
    assert "keep weekly-cleanup (no longer in the code; --prune deletes it)" in changed.stdout
    events = client.job_events("nightly_report")
    assert [e.type for e in events] == ["JobCreated", "JobUpdated"]
    assert events[-1].payload["changed_fields"] == ["retries"]
    assert client.get_job("weekly-cleanup").name == "weekly-cleanup"
    pruned = apply(cluster, "nightly_jobs.py", "--yes", "--prune", cwd=tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert "- delete weekly-cleanup" in pruned.stdout
    names = {j.name for j in client.all_jobs()}
    assert "weekly-cleanup" not in names
    assert "by-hand" in names  # made by hand: not applied from code, never pruned

    before = log_size(client)
    last = apply(cluster, "nightly_jobs.py", "--yes", "--prune", cwd=tmp_path)
    assert "0 to create, 0 to update, 1 unchanged, 0 to delete" in last.stdout
    assert log_size(client) == before


def test_apply_reads_a_yaml_file_and_names_what_the_api_refuses(
    cluster: Cluster, client: Client, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        "jobs:\n"
        "  - {name: yaml-ping, type: shell, command: [echo, hi], schedule: every 1h}\n"
        "  - {name: yaml-bad, type: shell, command: 'true', schedule: '61 * * * *'}\n"
    )
    result = apply(cluster, str(jobs), "--yes", "--marker", "yaml-jobs", cwd=tmp_path)
    assert result.returncode == 1
    assert "schedule: invalid schedule '61 * * * *'" in result.stderr
    assert client.get_job("yaml-ping").tags == ["yaml-jobs"]  # created before the bad one


def test_parameters_are_checked_against_the_signature_through_the_api(
    cluster: Cluster, client: Client
) -> None:
    client.create_job(typed_jobs.days_between.spec)
    with pytest.raises(ValidationFailed) as refused:
        client.trigger("days_between", {"start": "03.12.2026", "colour": "red"})
    problems = {e.field: e.reason for e in refused.value.errors}
    assert set(problems) == {"parameters.start", "parameters.colour"}
    assert "is not a 'date'" in problems["parameters.start"]
    assert problems["parameters.colour"].startswith("unknown parameter (it takes: end, label")

    with pytest.raises(ValidationFailed) as missing:
        client.trigger("days_between", {})
    assert [(e.field, e.reason) for e in missing.value.errors] == [("parameters.start", "required")]

    from chronolog.client import RunRequest

    with pytest.raises(ValidationFailed) as batch:
        client.trigger_many(
            [
                RunRequest("days_between", {"start": "2026-12-01"}),
                RunRequest("days_between", {"start": "2026-12-01", "label": 7}),
            ]
        )
    assert [e.field for e in batch.value.errors] == ["runs[1].parameters.label"]
    assert client.list_runs(job="days_between").total == 0  # all or none

    with pytest.raises(ValidationFailed) as defaults:
        client.update_job("days_between", {"parameters": {"start": 5}})
    assert [e.field for e in defaults.value.errors] == ["parameters.start"]


def test_a_date_string_arrives_as_a_date_on_a_real_worker(
    cluster: Cluster, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for function in (typed_jobs.days_between, typed_jobs.greet):
        if function.spec["name"] not in {j.name for j in client.all_jobs()}:
            client.create_job(function.spec)
    monkeypatch.setenv("CHRONOLOG_API_URL", cluster.url)
    monkeypatch.setenv("CHRONOLOG_TOKEN", cluster.server.token)

    handle = typed_jobs.days_between.trigger(start="2026-12-03", end="2026-12-24")
    assert handle.result(timeout=30) == {
        "label": "span",
        "days": 21,
        "start_type": "date",
        "end_type": "date",
    }
    assert handle.status() == "completed"
    assert typed_jobs.greet.trigger(names=["Ada", "Alan"]).result(timeout=30) == "hello Ada, Alan"

    # A job without a schema (made before schema v5, or by hand) is not checked by the
    # API; the worker still converts, and a value that does not fit fails the run at once
    # (not retried), naming the parameter.
    spec = {**typed_jobs.days_between.spec, "name": "untyped-days", "parameters_schema": None}
    client.create_job(spec)
    failing = client.trigger("untyped-days", {"start": "03.12.2026"})
    with pytest.raises(RunFailed) as failed:
        client.result(failing.run_id, timeout=30)
    assert "parameters.start: Input should be a valid date" in str(failed.value)
    assert failed.value.status == "failed"
    assert len(client.get_run(failing.run_id).attempts) == 1
