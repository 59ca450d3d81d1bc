"""docker-compose.yml, checked without a Docker engine.

The file is validated against the Compose Specification's JSON schema (the copy that
check-jsonschema ships as ``vendor.compose-spec``). Each Chronolog service's command is
parsed by the real CLI and its environment by the real settings loader, so a service
cannot run something the tests do not run locally.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.core
import typer.main
from ruamel.yaml import YAML
from sqlalchemy.engine import make_url

from chronolog.cli import app
from chronolog.settings import PARSERS, Settings, load_settings, parse_kafka_url

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CHRONOLOG_SERVICES = [
    "setup",
    "api",
    "scheduler-a",
    "scheduler-b",
    "projector-a",
    "projector-b",
    "worker",
    "dashboard",
]
LONG_RUNNING = [name for name in CHRONOLOG_SERVICES if name != "setup"]
# The roles that take leases; the dashboard only reads and calls the API.
LEASING_ROLES = [name for name in LONG_RUNNING if name != "dashboard"]
INFRASTRUCTURE = ["kafka", "postgres", "redis"]
MONITORING = ["prometheus", "grafana"]  # the `monitoring` profile


def _load_compose() -> dict[str, Any]:
    loaded = YAML(typ="safe", pure=True).load(COMPOSE_FILE)
    assert isinstance(loaded, dict)
    return loaded


COMPOSE = _load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
VALIDATE = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]


def _check_compose_spec(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VALIDATE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in sorted(units, key=len, reverse=True):
        if duration.endswith(unit):
            return float(duration.removesuffix(unit)) * units[unit]
    raise AssertionError(f"not a Compose duration: {duration!r}")


def _parse_cli(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """The subcommand ``argv`` names and its parsed options; nothing is run."""
    command = typer.main.get_command(app)
    path, rest = ["chronolog"], list(argv)
    while isinstance(command, typer.core.TyperGroup):
        assert rest, f"{' '.join(path)} needs a subcommand"
        name = rest.pop(0)
        assert name in command.commands, f"{' '.join(path)} has no subcommand {name!r}"
        command = command.commands[name]
        path.append(name)
    with command.make_context(" ".join(path), rest) as ctx:
        return " ".join(path[1:]), dict(ctx.params)


def test_the_file_follows_the_compose_specification() -> None:
    result = _check_compose_spec(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_validator_rejects_an_unknown_service_key(tmp_path: Path) -> None:
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["worker"]["scale_to"] = 4
    path = tmp_path / "docker-compose.yml"
    path.write_text(json.dumps(broken))  # JSON is YAML
    result = _check_compose_spec(path)
    assert result.returncode == 1
    assert "'scale_to' was unexpected" in result.stdout


def test_the_chronolog_services_are_the_ones_built_from_this_repository() -> None:
    built = sorted(name for name, service in SERVICES.items() if "build" in service)
    assert built == sorted(CHRONOLOG_SERVICES)
    assert sorted(set(SERVICES) - set(built)) == sorted(INFRASTRUCTURE + MONITORING)


@pytest.mark.parametrize("name", CHRONOLOG_SERVICES)
def test_each_service_environment_is_accepted_by_the_settings(name: str) -> None:
    env = SERVICES[name]["environment"]
    assert all(isinstance(value, str) for value in env.values()), env
    settings = load_settings(env)
    assert settings.event_log_url.startswith("kafka://")
    assert settings.database.startswith("postgresql+psycopg://")
    assert settings.redis_url.startswith("redis://")
    assert settings.log_format == "json"


@pytest.mark.parametrize("name", CHRONOLOG_SERVICES)
def test_each_service_runs_a_chronolog_subcommand_with_options_it_accepts(name: str) -> None:
    subcommand, _params = _parse_cli(SERVICES[name]["command"])
    assert subcommand == name.removesuffix("-a").removesuffix("-b")  # scheduler-a: scheduler


PUBLISH_ADDRESS = "${CHRONOLOG_PUBLISH_ADDRESS:-127.0.0.1}"
# HOST:PORT:CONTAINER_PORT with the host address first; IPv6 addresses come in brackets.
PUBLISHED = re.compile(r"^(?P<host>\$\{[^}]+\}|\[[^]]+\]|[^:]+):(?P<port>\d+):(?P<target>\d+)$")


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME:-default}``: the variable when set and not empty, else the default."""

    def one(match: re.Match[str]) -> str:
        return env.get(match["name"]) or match["default"]

    return re.sub(r"\$\{(?P<name>\w+):-(?P<default>[^}]*)\}", one, value)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_published_port_is_bound_to_loopback_unless_configured(name: str) -> None:
    for mapping in SERVICES[name].get("ports", []):
        assert isinstance(mapping, str), f"{name}: use HOST:PORT:PORT strings, not {mapping!r}"
        parsed = PUBLISHED.match(mapping)
        assert parsed, f"{name} publishes {mapping!r} on every interface"
        assert parsed["host"] == PUBLISH_ADDRESS, f"{name}: {mapping!r}"
        assert _interpolate(mapping, {}).startswith("127.0.0.1:")
        assert _interpolate(mapping, {"CHRONOLOG_PUBLISH_ADDRESS": "0.0.0.0"}).startswith(
            "0.0.0.0:"
        )
        assert _interpolate(mapping, {"CHRONOLOG_PUBLISH_ADDRESS": ""}).startswith("127.0.0.1:")


def test_the_publish_address_is_not_mistaken_for_a_chronolog_setting() -> None:
    # Exported in a shell for compose, it must not stop a local `chronolog up`.
    assert load_settings({"CHRONOLOG_PUBLISH_ADDRESS": "0.0.0.0"}) == Settings()


def test_the_api_listens_in_its_container_and_is_published_on_loopback() -> None:
    _, params = _parse_cli(SERVICES["api"]["command"])
    assert params["api_host"] == "0.0.0.0"  # inside its container
    assert SERVICES["api"]["ports"] == [
        f"{PUBLISH_ADDRESS}:{params['api_port']}:{params['api_port']}"
    ]
    health = " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert f"http://localhost:{params['api_port']}/api/health" in health


def test_the_image_entrypoint_is_the_chronolog_script() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "chronolog" in pyproject["project"]["scripts"]
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    assert 'ENTRYPOINT ["chronolog"]' in dockerfile


def test_the_image_tells_workers_where_job_code_lives() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    assert "RUN mkdir /app" in dockerfile
    assert "ENV CHRONOLOG_APP_DIR=/app" in dockerfile
    assert load_settings({"CHRONOLOG_APP_DIR": "/app"}).app_dir == Path("/app")


def test_the_worker_can_scale_and_drains_before_it_is_killed() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    _, params = _parse_cli(worker["command"])
    assert params["concurrency"] >= 1
    raw = worker["environment"].get("CHRONOLOG_DRAIN_TIMEOUT")
    drain = Settings().drain_timeout if raw is None else PARSERS["drain_timeout"]("", raw)
    assert _seconds(worker["stop_grace_period"]) > drain


def test_setup_runs_once_after_kafka_and_postgres_are_healthy() -> None:
    setup = SERVICES["setup"]
    assert setup["restart"] == "no"
    assert setup["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }


@pytest.mark.parametrize("name", LEASING_ROLES)
def test_each_chronolog_role_starts_after_setup_and_a_healthy_redis(name: str) -> None:
    service = SERVICES[name]
    assert service["restart"] == "unless-stopped"
    assert service["depends_on"] == {
        "setup": {"condition": "service_completed_successfully"},
        "redis": {"condition": "service_healthy"},
    }


def test_the_dashboard_calls_the_api_and_listens_on_loopback_only() -> None:
    dashboard = SERVICES["dashboard"]
    _, params = _parse_cli(dashboard["command"])
    assert params["host"] == "0.0.0.0"  # inside its container
    assert dashboard["ports"] == [f"{PUBLISH_ADDRESS}:{params['port']}:{params['port']}"]
    health = " ".join(dashboard["healthcheck"]["test"])
    assert f"http://localhost:{params['port']}/" in health
    assert dashboard["restart"] == "unless-stopped"
    assert dashboard["depends_on"] == {
        "setup": {"condition": "service_completed_successfully"},
        "api": {"condition": "service_healthy"},
    }
    settings = load_settings(dashboard["environment"])
    _, api = _parse_cli(SERVICES["api"]["command"])
    assert settings.api_base_url == f"http://api:{api['api_port']}"
    assert settings.database == load_settings(SERVICES["api"]["environment"]).database


@pytest.mark.parametrize("name", INFRASTRUCTURE)
def test_each_backend_has_a_health_check_and_a_named_volume(name: str) -> None:
    service = SERVICES[name]
    assert service["restart"] == "unless-stopped"
    assert service["healthcheck"]["test"][0] == "CMD"
    volumes = [mount.split(":")[0] for mount in service["volumes"]]
    assert volumes, name
    assert all(volume in COMPOSE["volumes"] for volume in volumes)


def test_every_reference_names_something_the_file_defines() -> None:
    for name, service in SERVICES.items():
        for target, condition in service.get("depends_on", {}).items():
            assert target in SERVICES, f"{name} depends on undefined {target}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{target} has no health check"
    mounted = {
        mount.split(":")[0] for service in SERVICES.values() for mount in service.get("volumes", [])
    }
    files = {source for source in mounted if source.startswith("./")}
    assert mounted - files == set(COMPOSE["volumes"])
    for source in files:  # bind mounts of this repository's deploy/ files
        assert (ROOT / source).exists(), source


def test_the_chronolog_urls_point_at_the_backend_services() -> None:
    env = SERVICES["api"]["environment"]
    kafka = SERVICES["kafka"]["environment"]
    bootstrap = parse_kafka_url("CHRONOLOG_EVENT_LOG", env["CHRONOLOG_EVENT_LOG"]).bootstrap
    assert f"PLAINTEXT://{bootstrap}" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    database = make_url(env["CHRONOLOG_DATABASE_URL"])
    postgres = SERVICES["postgres"]["environment"]
    assert (database.host, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.database == postgres["POSTGRES_DB"]
    assert urlsplit(env["CHRONOLOG_REDIS_URL"]).netloc == "redis:6379"


def test_kafka_runs_kraft_without_topic_auto_creation_and_a_valid_cluster_id() -> None:
    kafka = SERVICES["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert kafka["KAFKA_CONTROLLER_LISTENER_NAMES"] in kafka["KAFKA_LISTENERS"]
    # Kafka formats its storage with this id: a UUID, URL-safe base64 without padding.
    cluster_id = kafka["CLUSTER_ID"]
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


# --- the monitoring profile ----------------------------------------------------------


@pytest.mark.parametrize("name", MONITORING)
def test_monitoring_runs_only_with_its_profile_from_pinned_images(name: str) -> None:
    service = SERVICES[name]
    assert service["profiles"] == ["monitoring"]
    assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", service["image"]), service["image"]
    others = [n for n in SERVICES if n not in MONITORING]
    assert all("profiles" not in SERVICES[n] for n in others)


def _metrics_ports() -> dict[str, int]:
    """Each Chronolog service's metrics port, from its command (the API's own port)."""
    ports = {}
    for name in LONG_RUNNING:
        _, options = _parse_cli(SERVICES[name]["command"])
        port = options.get("metrics_port") or options.get("api_port")
        if port is not None:
            ports[name] = port
    return ports


def test_prometheus_scrapes_every_role_where_it_serves_metrics() -> None:
    config = YAML(typ="safe", pure=True).load(ROOT / "deploy/prometheus/prometheus.yml")
    targets = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets |= set(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            targets |= {f"{name}:{dns['port']}" for name in dns["names"]}
    assert targets == {f"{name}:{port}" for name, port in _metrics_ports().items()}
    assert set(_metrics_ports()) == set(LONG_RUNNING) - {"dashboard"}
    assert load_settings(SERVICES["worker"]["environment"]).metrics_host == "0.0.0.0"


def _exported_metric_names() -> set[str]:
    from prometheus_client import CollectorRegistry

    from metrics.prometheus import PrometheusMetrics
    from metrics.state import StateCollector, StateReading

    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    registry.register(StateCollector(lambda: StateReading({}, 0, 0)))
    names = set()
    for family in registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
    return names


def test_the_grafana_dashboard_queries_only_metrics_chronolog_exports() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/chronolog.json").read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for query in queries for name in re.findall(r"chronolog_\w+", query)}
    exported = _exported_metric_names()
    assert used <= exported, used - exported
    # Every family is on the dashboard, but for the histograms' sums and counts.
    assert {n for n in exported if not n.endswith(("_sum", "_count"))} <= used
    provisioned = YAML(typ="safe", pure=True).load(
        ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml"
    )
    uids = {source["uid"] for source in provisioned["datasources"]}
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} <= uids
