import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from chronolog.settings import KafkaUrl, Settings, SettingsError, load_settings, parse_kafka_url


def test_defaults_need_no_environment() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.event_log_url == "sqlite:///.chronolog/events.db"
    assert settings.database == "sqlite:///.chronolog/readmodel.db"


def test_environment_then_overrides() -> None:
    env = {"CHRONOLOG_API_PORT": "9000", "CHRONOLOG_DATA_DIR": "/tmp/x", "PATH": "/bin"}
    settings = load_settings(env, api_port=9100, data_dir=None)
    assert settings.api_port == 9100
    assert settings.data_dir == Path("/tmp/x")
    assert settings.event_log_url == "sqlite:////tmp/x/events.db"


def test_job_code_settings() -> None:
    assert (Settings().app_dir, Settings().max_runs_per_child) == (Path("."), 1000)
    env = {"CHRONOLOG_APP_DIR": "/app", "CHRONOLOG_MAX_RUNS_PER_CHILD": "0"}
    settings = load_settings(env)
    assert (settings.app_dir, settings.max_runs_per_child) == (Path("/app"), 0)


def test_the_secrets_file_is_a_path() -> None:
    assert Settings().secrets_file is None
    settings = load_settings({"CHRONOLOG_SECRETS_FILE": "/run/secrets/chronolog.json"})
    assert settings.secrets_file == Path("/run/secrets/chronolog.json")


def test_cors_is_off_by_default_and_takes_explicit_origins() -> None:
    assert Settings().cors_origins == ()
    env = {"CHRONOLOG_CORS_ORIGINS": " https://Ops.Example.com:443, http://localhost:3000/ ,"}
    assert load_settings(env).cors_origins == ("https://ops.example.com", "http://localhost:3000")


def test_rate_limits_are_generous_by_default_and_zero_turns_them_off() -> None:
    assert (Settings().api_rate_limit, Settings().api_rate_burst) == (200.0, 1000)
    env = {"CHRONOLOG_API_RATE_LIMIT": "0", "CHRONOLOG_API_RATE_BURST": "5"}
    assert (load_settings(env).api_rate_limit, load_settings(env).api_rate_burst) == (0.0, 5)


def test_test_variables_are_not_settings() -> None:
    assert load_settings({"CHRONOLOG_TEST_KAFKA": "127.0.0.1:9092"}) == Settings()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHRONOLOG_API_PROT": "1"}, "unknown setting CHRONOLOG_API_PROT"),
        ({"CHRONOLOG_API_PORT": "eighty"}, "CHRONOLOG_API_PORT='eighty' is not an integer"),
        ({"CHRONOLOG_API_PORT": "70000"}, "CHRONOLOG_API_PORT='70000' is not a TCP port"),
        ({"CHRONOLOG_DASHBOARD_PORT": "0"}, "CHRONOLOG_DASHBOARD_PORT='0' must be greater than 0"),
        (
            {"CHRONOLOG_API_URL": "127.0.0.1:8000"},
            "CHRONOLOG_API_URL='127.0.0.1:8000' is not an HTTP URL, e.g. http://127.0.0.1:8000",
        ),
        ({"CHRONOLOG_PARTITIONS": "0"}, "CHRONOLOG_PARTITIONS='0' must be greater than 0"),
        (
            {"CHRONOLOG_EVENT_LOG": "mysql://x"},
            "CHRONOLOG_EVENT_LOG='mysql://x' is not an event log URL",
        ),
        (
            {"CHRONOLOG_DATABASE_URL": "nonsense"},
            "CHRONOLOG_DATABASE_URL='nonsense' is not a database URL",
        ),
        ({"CHRONOLOG_LOG_LEVEL": "LOUD"}, "CHRONOLOG_LOG_LEVEL='LOUD' is not one of"),
        (
            {"CHRONOLOG_DATABASE_URL": "mysql+pymysql://u@h/db"},
            "CHRONOLOG_DATABASE_URL='mysql+pymysql://u@h/db': read models run on sqlite:///PATH",
        ),
        (
            {"CHRONOLOG_DATABASE_URL": "postgresql+psycopg://u@h:5432"},
            "CHRONOLOG_DATABASE_URL='postgresql+psycopg://u@h:5432' names no database",
        ),
        (
            {"CHRONOLOG_DATABASE_URL": "sqlite://"},
            "CHRONOLOG_DATABASE_URL='sqlite://': a SQLite read model needs a file",
        ),
        (
            {"CHRONOLOG_KAFKA_SESSION_TIMEOUT": "0"},
            "CHRONOLOG_KAFKA_SESSION_TIMEOUT='0' must be greater than 0",
        ),
        (
            {"CHRONOLOG_MAX_RUNS_PER_CHILD": "-1"},
            "CHRONOLOG_MAX_RUNS_PER_CHILD='-1' must be 0 or more",
        ),
        (
            {"CHRONOLOG_MAX_RUNS_PER_CHILD": "many"},
            "CHRONOLOG_MAX_RUNS_PER_CHILD='many' is not an integer",
        ),
        ({"CHRONOLOG_APP_DIR": " "}, "CHRONOLOG_APP_DIR is empty; give a directory"),
        ({"CHRONOLOG_SECRETS_FILE": ""}, "CHRONOLOG_SECRETS_FILE is empty; give a file"),
        ({"CHRONOLOG_CORS_ORIGINS": "*"}, "CHRONOLOG_CORS_ORIGINS: '*' would let every web page"),
        (
            {"CHRONOLOG_CORS_ORIGINS": "https://a.example,ops.example.com"},
            "CHRONOLOG_CORS_ORIGINS: 'ops.example.com' is not an origin (scheme://host[:port]",
        ),
        (
            {"CHRONOLOG_CORS_ORIGINS": "https://a.example/app"},
            "CHRONOLOG_CORS_ORIGINS: 'https://a.example/app' is not an origin",
        ),
        (
            {"CHRONOLOG_API_RATE_LIMIT": "-1"},
            "CHRONOLOG_API_RATE_LIMIT='-1' must be 0 (off) or a positive number",
        ),
        ({"CHRONOLOG_API_RATE_LIMIT": "nan"}, "CHRONOLOG_API_RATE_LIMIT='nan' must be 0 (off)"),
        ({"CHRONOLOG_API_RATE_BURST": "0"}, "CHRONOLOG_API_RATE_BURST='0' must be greater than 0"),
    ],
)
def test_bad_settings_name_the_variable_and_value(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(env)


def test_the_variables_a_job_gets_are_not_settings() -> None:
    env = {
        "CHRONOLOG_RUN_ID": "run-1",
        "CHRONOLOG_PARAMS": "{}",
        "CHRONOLOG_JOB_ID": "j",
        "CHRONOLOG_ATTEMPT": "1",
        "CHRONOLOG_JOB_NAME": "report",
        "CHRONOLOG_SCHEDULED_FOR": "2026-11-23T09:00:00+00:00",
    }
    assert load_settings(env) == Settings()


def test_a_redis_url_selects_redis_and_a_bad_one_names_itself() -> None:
    assert (
        load_settings({"CHRONOLOG_REDIS_URL": "redis://127.0.0.1:6379/0"}).redis_url
        == "redis://127.0.0.1:6379/0"
    )
    with pytest.raises(
        SettingsError, match=re.escape("CHRONOLOG_REDIS_URL='http://x' is not a Redis URL")
    ):
        load_settings({"CHRONOLOG_REDIS_URL": "http://x"})


def test_a_postgresql_url_selects_postgresql_and_hides_its_password() -> None:
    url = "postgresql+psycopg://chronolog:secret@db:5432/chronolog"
    settings = load_settings({"CHRONOLOG_DATABASE_URL": url})
    assert settings.database == url
    assert settings.database_label == "postgresql+psycopg://chronolog:***@db:5432/chronolog"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///readmodel.db",
        "sqlite:////var/lib/chronolog/readmodel.db",
        "postgresql+psycopg://u:p@db:5432/chronolog",
        "postgresql+psycopg://u@db/chronolog?sslmode=require",
        "postgresql+psycopg:///chronolog?host=/run/postgresql",
    ],
)
def test_an_accepted_database_url_is_one_sqlalchemy_opens(url: str) -> None:
    assert load_settings({"CHRONOLOG_DATABASE_URL": url}).database == url
    parsed = make_url(url)
    assert parsed.drivername in ("sqlite", "postgresql+psycopg")
    assert parsed.database


@pytest.mark.parametrize(
    "url, reason",
    [
        ("postgresql://u@db/chronolog", "read models run on sqlite:///PATH"),
        ("sqlite+pysqlite:///readmodel.db", "a SQLite read model needs a file"),
        ("sqlite:///:memory:", "a SQLite read model needs a file"),
        ("sqlite:///?mode=ro", "a SQLite read model needs a file"),
        ("postgresql+psycopg://u@db:5432/", "names no database"),
        ("postgresql+psycopg://u@db:port/chronolog", "has a port that is not a number"),
        ("post gres://u@db/chronolog", "is not a database URL"),
    ],
)
def test_a_database_url_the_read_model_cannot_use_is_refused(url: str, reason: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(reason)):
        load_settings({"CHRONOLOG_DATABASE_URL": url})


def test_reading_the_settings_does_not_import_sqlalchemy() -> None:
    """Every role reads them; a worker never opens the read model (SQLAlchemy is ~12 MiB)."""
    code = (
        "import sys\n"
        "from chronolog.settings import load_settings\n"
        "load_settings({'CHRONOLOG_DATABASE_URL': 'postgresql+psycopg://u@db/chronolog'})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_kafka_url_carries_brokers_topic_and_partitions() -> None:
    url = "kafka://a:9092,b:9092?topic=jobs&partitions=24&replication_factor=3"
    assert load_settings({"CHRONOLOG_EVENT_LOG": url}).event_log_url == url
    assert parse_kafka_url("X", url) == KafkaUrl("a:9092,b:9092", "jobs", 24, 3)
    assert parse_kafka_url("X", "kafka://a:9092") == KafkaUrl("a:9092")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("kafka://", "names no broker"),
        ("kafka://h:9092?parts=3", "unknown option 'parts'"),
        ("kafka://h:9092?partitions=0", "option partitions='0' must be greater than 0"),
    ],
)
def test_bad_kafka_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings({"CHRONOLOG_EVENT_LOG": url})


def test_metrics_are_on_by_default_and_switch_off_with_a_port_only_when_asked() -> None:
    assert (Settings().metrics, Settings().metrics_port, Settings().metrics_host) == (
        True,
        None,
        "127.0.0.1",
    )
    env = {"CHRONOLOG_METRICS": "off", "CHRONOLOG_METRICS_PORT": "9101"}
    settings = load_settings(env)
    assert (settings.metrics, settings.metrics_port) == (False, 9101)
    with pytest.raises(SettingsError, match="CHRONOLOG_METRICS='maybe' is not on or off"):
        load_settings({"CHRONOLOG_METRICS": "maybe"})
    with pytest.raises(SettingsError, match="CHRONOLOG_METRICS_PORT='70000' is not a TCP port"):
        load_settings({"CHRONOLOG_METRICS_PORT": "70000"})
