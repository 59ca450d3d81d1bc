"""What ``chronolog up`` starts beside the API."""

from __future__ import annotations

from pathlib import Path

from chronolog.serving import child_commands
from chronolog.settings import Settings


def roles(**options: object) -> dict[str, list[str]]:
    settings = Settings(data_dir=Path("/srv/data"), api_port=9000, dashboard_port=9050)
    defaults: dict[str, object] = {"scheduler": True, "workers": 2, "concurrency": 4}
    return dict(child_commands(settings, **{**defaults, **options}))  # type: ignore[arg-type]


def test_the_dashboard_runs_as_a_child_aimed_at_this_api() -> None:
    command = roles(dashboard=True)["dashboard"]

    assert command[-8:] == [
        "--data-dir", "/srv/data",
        "--port", "9050",
        "--host", "127.0.0.1",
        "--api-url", "http://127.0.0.1:9000",
    ]  # fmt: skip


def test_no_dashboard_starts_only_the_scheduler_and_workers() -> None:
    assert list(roles(dashboard=False)) == ["scheduler", "worker-1", "worker-2"]


def test_an_api_on_every_interface_is_reached_on_loopback() -> None:
    settings = Settings(api_host="0.0.0.0", api_port=8000)
    assert settings.api_base_url == "http://127.0.0.1:8000"
    assert Settings(api_url="https://chronolog.example/").api_base_url == (
        "https://chronolog.example"
    )


def test_ups_workers_run_shell_jobs_on_the_embedded_defaults_only() -> None:
    embedded = dict(child_commands(Settings(), scheduler=False, workers=1, concurrency=1))
    assert embedded["worker-1"][-2:] == ["--job-types", "python,shell,http"]

    production = Settings(redis_url="redis://127.0.0.1:6379/0")
    on_servers = dict(child_commands(production, scheduler=False, workers=1, concurrency=1))
    assert "--job-types" not in on_servers["worker-1"]

    chosen = Settings(worker_job_types=("python",))
    configured = dict(child_commands(chosen, scheduler=False, workers=1, concurrency=1))
    assert "--job-types" not in configured["worker-1"]  # the operator's choice stands


def test_the_projector_runs_as_a_child_under_the_lock_up_holds() -> None:
    commands = roles(projector=True, projector_lock_fd=7)
    assert list(commands) == ["projector", "scheduler", "worker-1", "worker-2"]
    assert commands["projector"][-5:] == [
        "projector", "--data-dir", "/srv/data", "--held-lock-fd", "7",
    ]  # fmt: skip
    on_servers = roles(projector=True, projector_lock_fd=None)  # Kafka + PostgreSQL: no lock
    assert on_servers["projector"][-3:] == ["projector", "--data-dir", "/srv/data"]
    assert "projector" not in roles()  # `chronolog api`: a projector runs elsewhere
