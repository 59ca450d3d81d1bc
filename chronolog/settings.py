"""Settings, built once from ``CHRONOLOG_*`` variables and command-line overrides.

Precedence: built-in defaults, then the environment, then flags. Unknown
``CHRONOLOG_*`` names and bad values are errors that name the variable.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from api.origins import normalize_origin
from events.errors import ChronologError
from worker import context as job_context
from worker import policy
from worker.policy import ExecutorPolicy

PREFIX = "CHRONOLOG_"
# Not settings: the test suite's service addresses, the host address docker-compose.yml
# publishes ports on, and what a worker tells each job (so a job may itself run the
# chronolog CLI).
IGNORED_PREFIXES = ("CHRONOLOG_TEST_", "CHRONOLOG_PUBLISH_ADDRESS")
JOB_VARIABLES = job_context.VARIABLES
_URL_SCHEME = re.compile(r"[\w+]+")  # what SQLAlchemy accepts before "://"


class SettingsError(ChronologError):
    """A setting is unknown or has a value Chronolog cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path(".chronolog")
    event_log: str = ""  # default: sqlite:///<data_dir>/events.db
    database_url: str = ""  # default: sqlite:///<data_dir>/readmodel.db
    redis_url: str = ""  # default: the embedded lease store, <data_dir>/leases.db
    partitions: int = 12
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_max_body_bytes: int = 1024 * 1024
    read_your_writes_timeout: float = 5.0
    log_level: str = "INFO"
    log_format: str = "text"
    worker_heartbeat_interval: float = 30.0
    run_lease_ttl: float = 15.0  # a run whose worker stops renewing is lost after this
    leader_ttl: float = 5.0  # a standby scheduler takes over within this
    kill_grace: float = 5.0  # between SIGTERM and SIGKILL when a job times out or is cancelled
    drain_timeout: float = 30.0  # a stopping worker finishes its runs for this long
    # Kafka consumer-group session: a dead projector's partitions move after this. Apache
    # Kafka accepts 6-1800 s by default; the local test broker wants 2 s (TESTING.md).
    kafka_session_timeout: float = 10.0
    # Workers: python jobs import their code from here first (default: the directory the
    # worker starts in), and a prefork child is replaced after this many runs (0: never).
    app_dir: Path = Path(".")
    max_runs_per_child: int = 1000

    health_max_lag: int = 10_000  # events the projector may lag before /api/health is 503
    health_stall_after: float = 30.0  # seconds with events to apply and no progress: stalled
    live_output_max_streams: int = 100  # open live-output streams per API process
    change_streams_max: int = 200  # open /api/changes streams per API process

    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8050
    api_url: str = ""  # where the dashboard sends actions; default: this API's address
    # The token the Python client and `chronolog apply` send (chronolog.client); declared
    # here so the other commands accept an environment that sets it.
    token: str = ""
    # Workers and the hook deliverer (in the scheduler): a JSON object of secret names to
    # values, looked up before the environment.
    secrets_file: Path | None = None

    # Hook deliveries (notify/, run by each scheduler process): attempts per outcome and
    # hook, the delay before the second (doubling, capped), one attempt's time limit,
    # attempts in flight, and how far back a starting deliverer looks for undelivered ones.
    hooks_max_attempts: int = 5
    hooks_retry_delay: float = 1.0
    hooks_max_retry_delay: float = 300.0
    hooks_timeout: float = 10.0
    hooks_concurrency: int = 16
    hooks_recovery_window: float = 24 * 3600.0

    # Executor policy (worker.policy). Empty job types: python and http, and `up` on the
    # embedded defaults adds shell for its own workers; empty modules: the app dir's.
    worker_job_types: tuple[str, ...] = ()
    worker_python_modules: tuple[str, ...] = ()
    http_allow: tuple[str, ...] = ()

    # Browser pages (other than the API's own) allowed to call the API; none: CORS off.
    cors_origins: tuple[str, ...] = ()
    # Token bucket per caller (bearer token, else client address); 0 turns it off.
    api_rate_limit: float = 200.0  # requests per second
    api_rate_burst: int = 1000

    # Prometheus metrics (metrics/): off skips every observation and serves no /metrics.
    metrics: bool = True
    # Worker, scheduler and projector processes serve /metrics here when given (--metrics-port).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    @property
    def embedded(self) -> bool:
        """Every backend is the embedded default: the first-run, single-machine shape."""
        return not (self.event_log or self.database_url or self.redis_url)

    def executor_policy(self) -> ExecutorPolicy:
        return ExecutorPolicy(
            job_types=self.worker_job_types or policy.DEFAULT_JOB_TYPES,
            python_modules=self.worker_python_modules,
            http_allow=policy.parse_allow(",".join(self.http_allow)),
        )

    @property
    def event_log_url(self) -> str:
        return self.event_log or f"sqlite:///{self.data_dir / 'events.db'}"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'readmodel.db'}"

    @property
    def api_base_url(self) -> str:
        """The API as the dashboard reaches it: ``api_url``, else the local API's address."""
        if self.api_url:
            return self.api_url.rstrip("/")
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.api_port}"

    @property
    def database_label(self) -> str:
        """The read model's URL fit for logs and messages (no password)."""
        from sqlalchemy.engine import make_url  # not at import: workers never need it

        return make_url(self.database).render_as_string(hide_password=True)


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be greater than 0")
    return value


def _non_negative_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} must be 0 or more")
    return value


def _directory(name: str, raw: str) -> Path:
    if not raw.strip():
        raise SettingsError(f"{name} is empty; give a directory, e.g. {name}=/app")
    return Path(raw)


def _file(name: str, raw: str) -> Path:
    if not raw.strip():
        raise SettingsError(
            f"{name} is empty; give a file, e.g. {name}=/run/secrets/chronolog.json"
        )
    return Path(raw)


def _port(name: str, raw: str) -> int:
    value = _positive_int(name, raw)
    if value > 65535:
        raise SettingsError(f"{name}={raw!r} is not a TCP port (1-65535)")
    return value


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be greater than 0")
    return value


def _switch(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise SettingsError(f"{name}={raw!r} is not on or off")


def _choice(*allowed: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip()
        if value.upper() in allowed:
            return value.upper()
        if value.lower() in allowed:
            return value.lower()
        raise SettingsError(f"{name}={raw!r} is not one of {', '.join(allowed)}")

    return parse


def _event_log_url(name: str, raw: str) -> str:
    if raw.startswith("sqlite:///"):
        return raw
    if raw.startswith("kafka://"):
        parse_kafka_url(name, raw)  # validated now, so a bad value names itself at start-up
        return raw
    raise SettingsError(
        f"{name}={raw!r} is not an event log URL; expected sqlite:///PATH or "
        "kafka://HOST:PORT[,HOST:PORT]?topic=chronolog.events&partitions=12"
    )


@dataclass(frozen=True, slots=True)
class KafkaUrl:
    bootstrap: str
    topic: str = "chronolog.events"
    partitions: int | None = None  # None: CHRONOLOG_PARTITIONS
    replication_factor: int = 1


def parse_kafka_url(name: str, raw: str) -> KafkaUrl:
    parts = urlsplit(raw)
    if not parts.netloc:
        raise SettingsError(f"{name}={raw!r} names no broker, e.g. kafka://127.0.0.1:9092")
    query = parse_qs(parts.query)
    unknown = set(query) - {"topic", "partitions", "replication_factor"}
    if unknown:
        raise SettingsError(f"{name}={raw!r}: unknown option {sorted(unknown)[0]!r}")
    values: dict[str, Any] = {"bootstrap": parts.netloc}
    if "topic" in query:
        values["topic"] = query["topic"][-1]
    for option in ("partitions", "replication_factor"):
        if option in query:
            values[option] = _positive_int(f"{name} option {option}", query[option][-1])
    return KafkaUrl(**values)


def _database_url(name: str, raw: str) -> str:
    # Checked with urllib, not SQLAlchemy's make_url: every role reads this setting, and
    # importing SQLAlchemy cost a worker, which never opens the read model, ~12 MiB.
    scheme, has_slashes, _ = raw.partition("://")
    if not has_slashes or not _URL_SCHEME.fullmatch(scheme):
        raise SettingsError(f"{name}={raw!r} is not a database URL, e.g. sqlite:///readmodel.db")
    if scheme == "sqlite" or scheme.startswith("sqlite+"):
        path = raw.removeprefix("sqlite:///").partition("?")[0]
        if not raw.startswith("sqlite:///") or path in ("", ":memory:"):
            raise SettingsError(f"{name}={raw!r}: a SQLite read model needs a file, sqlite:///PATH")
        return raw
    if scheme != "postgresql+psycopg":
        raise SettingsError(
            f"{name}={raw!r}: read models run on sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018 -- urllib checks the port when it is read
    except ValueError:
        raise SettingsError(f"{name}={raw!r} has a port that is not a number") from None
    if not parts.path.strip("/"):
        raise SettingsError(f"{name}={raw!r} names no database, e.g. .../chronolog")
    return raw


def database_url_option(option: str, raw: str) -> str:
    """A read-model URL given on the command line, validated like the setting."""
    return _database_url(option, raw)


def _redis_url(name: str, raw: str) -> str:
    if raw.startswith(("redis://", "rediss://", "unix://")):
        return raw
    raise SettingsError(f"{name}={raw!r} is not a Redis URL, e.g. redis://127.0.0.1:6379/0")


def _http_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name}={raw!r} is not an HTTP URL, e.g. http://127.0.0.1:8000")
    return raw


def _policy(parse: Callable[[str], Any]) -> Callable[[str, str], Any]:
    """A ``worker.policy`` parser, its complaint prefixed with the variable."""

    def parse_named(name: str, raw: str) -> Any:
        try:
            return parse(raw)
        except policy.PolicyError as exc:
            raise SettingsError(f"{name}={raw!r}: {exc}") from None

    return parse_named


def _allow_entries(raw: str) -> tuple[str, ...]:
    return tuple(entry.text for entry in policy.parse_allow(raw))


def _origins(name: str, raw: str) -> tuple[str, ...]:
    origins = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if item == "*":
            raise SettingsError(
                f"{name}: '*' would let every web page call the API; list the origins, "
                "e.g. https://ops.example.com,http://localhost:3000"
            )
        canonical = normalize_origin(item)
        if canonical is None:
            raise SettingsError(
                f"{name}: {item!r} is not an origin (scheme://host[:port], no path), "
                "e.g. https://ops.example.com"
            )
        origins.append(canonical)
    return tuple(dict.fromkeys(origins))


def _non_negative_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise SettingsError(f"{name}={raw!r} must be 0 (off) or a positive number")
    return value


PARSERS: dict[str, Callable[[str, str], Any]] = {
    "data_dir": lambda _name, raw: Path(raw),
    "event_log": _event_log_url,
    "database_url": _database_url,
    "redis_url": _redis_url,
    "partitions": _positive_int,
    "api_host": lambda _name, raw: raw,
    "api_port": _port,
    "api_max_body_bytes": _positive_int,
    "read_your_writes_timeout": _positive_float,
    "log_level": _choice("DEBUG", "INFO", "WARNING", "ERROR"),
    "log_format": _choice("text", "json"),
    "worker_heartbeat_interval": _positive_float,
    "run_lease_ttl": _positive_float,
    "leader_ttl": _positive_float,
    "kill_grace": _positive_float,
    "drain_timeout": _positive_float,
    "kafka_session_timeout": _positive_float,
    "app_dir": _directory,
    "max_runs_per_child": _non_negative_int,
    "health_max_lag": _non_negative_int,
    "health_stall_after": _positive_float,
    "live_output_max_streams": _positive_int,
    "dashboard_host": lambda _name, raw: raw,
    "dashboard_port": _port,
    "api_url": _http_url,
    "token": lambda _name, raw: raw,
    "change_streams_max": _positive_int,
    "secrets_file": _file,
    "worker_job_types": _policy(policy.parse_job_types),
    "worker_python_modules": _policy(policy.parse_module_prefixes),
    "http_allow": _policy(_allow_entries),
    "cors_origins": _origins,
    "api_rate_limit": _non_negative_float,
    "api_rate_burst": _positive_int,
    "hooks_max_attempts": _positive_int,
    "hooks_retry_delay": _positive_float,
    "hooks_max_retry_delay": _positive_float,
    "hooks_timeout": _positive_float,
    "hooks_concurrency": _positive_int,
    "hooks_recovery_window": _positive_float,
    "metrics": _switch,
    "metrics_port": _port,
    "metrics_host": lambda _name, raw: raw,
}


def job_types_option(option: str, raw: str) -> tuple[str, ...]:
    """Job types given on the command line, validated like the setting."""
    parsed: tuple[str, ...] = _policy(policy.parse_job_types)(option, raw)
    return parsed


def load_settings(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Settings from ``environ`` (only ``CHRONOLOG_*`` names are read), then overrides.

    ``None`` overrides are ignored, so CLI options can pass through unset flags.
    """
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(PREFIX) or key.startswith(IGNORED_PREFIXES) or key in JOB_VARIABLES:
            continue
        field = key.removeprefix(PREFIX).lower()
        if field not in PARSERS:
            known = ", ".join(PREFIX + name.upper() for name in PARSERS)
            raise SettingsError(f"unknown setting {key}; known settings: {known}")
        values[field] = PARSERS[field](key, raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return dataclasses.replace(Settings(), **values)
