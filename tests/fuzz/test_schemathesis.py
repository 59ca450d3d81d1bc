"""Schemathesis against the real API: every operation in ``/openapi.json``, bounded.

The API runs as ``chronolog up`` runs it: uvicorn on a free port and the projector thread
(so writes are visible), on the embedded defaults (SQLite log, read model and leases) and
on Kafka + PostgreSQL + Redis.
The state is seeded first (a job of each type, runs in several states, a worker) and the
fuzzer is given those ids as well as made-up ones, so it reaches past the 404s.

It signs in with an admin token made for it (tokens close the API's open mode), and is
given viewer tokens it may revoke. Checks: no 5xx, every status code documented, content
types and bodies as documented, and data the schema calls invalid refused with a 4xx.
Each operation gets
``EXAMPLES`` positive and ``EXAMPLES`` negative cases (``CHRONOLOG_TEST_FUZZ_EXAMPLES``
to change it; ``CHRONOLOG_TEST_FUZZ_RANDOM=1`` for new random cases each run instead of
the same derandomized ones). The summary (operations, examples, failures) is logged.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
import redis
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from api.app import create_app
from chronolog.serving import api_context
from chronolog.settings import load_settings
from chronolog.tokens import new_token, token_hash
from chronolog.wiring import Runtime, build_runtime, open_read_model, start_projector
from events.model import (
    Event,
    Payload,
    RunDeadLettered,
    RunFailed,
    RunQueued,
    RunRequested,
    RunStarted,
    RunSucceeded,
    TokenCreated,
    WorkerRegistered,
)
from tests.conftest import wait_until
from tests.e2e.conftest import production_env
from tests.services.ports import free_port
from tests.services.postgres import database_factory

log = logging.getLogger(__name__)

EXAMPLES = int(os.environ.get("CHRONOLOG_TEST_FUZZ_EXAMPLES", "50"))
RANDOM = os.environ.get("CHRONOLOG_TEST_FUZZ_RANDOM") == "1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# What counts as refusing schema-invalid data: schemathesis's defaults, and 413 (a body
# over CHRONOLOG_API_MAX_BODY_BYTES is refused before it is read; found with a 1.2 MB
# command).
REFUSED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = {"checks": {"negative_data_rejection": {"expected-statuses": [*REFUSED, "5xx"]}}}
# No scheduler or worker runs here (what the fuzzer creates must never execute: its shell
# commands are random text), so /api/health answers its documented 503 report; the
# report's shape is still checked.
CHECKS_FOR = {"GET /api/health": [c for c in CHECKS if c is not not_a_server_error]}
# Endless server-sent event streams: a fuzzer's client reads a response to its end, so
# these would never answer. Their refusals and streams have their own tests
# (tests/integration/test_api_changes.py, test_live_output.py).
STREAMS = {"GET /api/changes", "GET /api/runs/{run_id}/output/live"}
WORKER = "worker-fuzz"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


ADMIN = "fuzz-admin"
VICTIMS = ("fuzz-victim-1", "fuzz-victim-2", "fuzz-victim-3")  # tokens DELETE may revoke


def make_tokens(runtime: Runtime) -> str:
    """An admin token for the fuzzer, and viewer tokens for it to revoke, appended as the
    token commands append them. Tokens close the API's open mode: every call signs in."""
    admin = new_token()
    made = [TokenCreated(ADMIN, "admin", token_hash(admin))]
    made += [TokenCreated(name, "viewer", token_hash(new_token())) for name in VICTIMS]
    events = [Event(payload=p, occurred_at=T0, actor="test") for p in made]
    runtime.log.append([(e.key, runtime.codec.encode(e)) for e in events])
    return admin


@dataclass
class Seeded:
    """Ids the fuzzer is offered for each path parameter, besides made-up ones."""

    jobs: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=lambda: list(VICTIMS))

    def values(self, parameter: str) -> list[str]:
        return {"ref": self.jobs, "run_id": self.runs, "name": self.tokens}.get(parameter, [])


@dataclass
class Served:
    url: str
    runtime: Runtime
    token: str
    seeded: Seeded

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def auth(token: str) -> dict[str, Any]:
    """The token as the schema's bearer scheme: schemathesis then knows the header is
    the API's authentication (a case without it is a case it made without auth)."""
    return {"openapi": {"HTTPBearer": {"bearer": token}}}


FUZZ_REDIS_DATABASE = 2  # apart from the contract suite (0) and the e2e clusters (1)


@pytest.fixture(scope="module", params=["embedded", "production"])
def backends(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """``CHRONOLOG_*`` variables: none (the SQLite log, read model and lease store), or a
    fresh Kafka topic, PostgreSQL database and emptied Redis database."""
    if request.param == "embedded":
        yield {}
        return
    redis_url = urlsplit(request.getfixturevalue("redis_url"))
    redis_url = redis_url._replace(path=f"/{FUZZ_REDIS_DATABASE}").geturl()
    redis.Redis.from_url(redis_url).flushdb()
    with database_factory(request.getfixturevalue("postgres_url")) as create:
        yield production_env(
            request.getfixturevalue("kafka_bootstrap"),
            request.getfixturevalue("kafka_group_config"),
            create(),
            redis_url,
        )
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    backends: dict[str, str],
) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    settings = load_settings(backends, data_dir=data, partitions=4)
    open_read_model(settings.database, upgrade=True).dispose()
    runtime = build_runtime(settings)
    stop = threading.Event()
    projector = start_projector(runtime, stop)
    context = api_context(runtime)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(context), host="127.0.0.1", port=port, log_config=None, access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started)
    token = make_tokens(runtime)
    headers = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{port}"
    try:
        yield Served(base, runtime, token, seed(base, headers, runtime))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        stop.set()
        projector.join(timeout=10)
        runtime.close()


SEED_JOBS: list[dict[str, Any]] = [
    {"name": "fuzz-python", "type": "python", "function": "reports.daily", "schedule": "every 1h"},
    {"name": "fuzz-shell", "type": "shell", "command": ["true"], "tags": ["fuzz"]},
    {
        "name": "fuzz-http",
        "type": "http",
        "url": "https://example.com/hook",
        "method": "POST",
        "headers": {"Authorization": {"secret": "FUZZ_TOKEN"}, "Accept": "application/json"},
    },
]


def seed(base: str, headers: dict[str, str], runtime: Runtime) -> Seeded:
    seeded = Seeded()
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        wait_until(lambda: client.get("/api/jobs").status_code == 200)  # the token projected
        for job in SEED_JOBS:
            ensure_job(client, job, seeded)
        for job_id in list(seeded.jobs):
            triggered = client.post(f"/api/jobs/{job_id}/trigger", json={})
            assert triggered.status_code == 201, triggered.text
            seeded.runs.append(triggered.json()["run_id"])
    shell = seeded.jobs[1]
    events = worker_and_runs(shell)
    runtime.log.append([(e.key, runtime.codec.encode(e)) for e in events])
    seeded.runs += sorted({e.run_id for e in events if e.run_id})
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        wait_until(
            lambda: all(client.get(f"/api/runs/{r}").status_code == 200 for r in seeded.runs)
        )
    return seeded


def ensure_job(client: httpx.Client, job: dict[str, Any], seeded: Seeded) -> None:
    """Create ``job`` (again, under a fresh name if the fuzzer took its name)."""
    for attempt in range(100):
        name = job["name"] if attempt == 0 else f"{job['name']}-{attempt}"
        created = client.post("/api/jobs", json={**job, "name": name})
        if created.status_code == 201:
            seeded.jobs.append(created.json()["id"])
            return
        assert created.status_code == 409, created.text
    raise AssertionError(f"could not create {job['name']}")


def worker_and_runs(job_id: str) -> list[Event]:
    """As the scheduler and a worker would append them: a worker, a running run, a
    succeeded one and a dead-lettered one."""

    def run(run_id: str, *payloads: Payload) -> list[Event]:
        return [
            Event(payload=p, occurred_at=T0, actor="test", job_id=job_id, run_id=run_id, attempt=1)
            for p in payloads
        ]

    started = (RunRequested(trigger="manual"), RunQueued("default"), RunStarted(WORKER, 1))
    return [
        Event(
            payload=WorkerRegistered(WORKER, "fuzz-host", 4242, ("default",), 4),
            occurred_at=T0,
            actor=WORKER,
        ),
        *run("run-fuzz-running", *started),
        *run("run-fuzz-succeeded", *started, RunSucceeded(WORKER, 1, 10, 0, "ok\n")),
        *run(
            "run-fuzz-dead",
            *started,
            RunFailed(WORKER, 1, 10, "exit 1", 1, retryable=False),
            RunDeadLettered("failed for good", 1),
        ),
    ]


@dataclass
class Tally:
    examples: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    no_negative: list[str] = field(default_factory=list)
    statuses: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def unanswered(self) -> list[str]:
        """Operations the fuzzer never got a 2xx from (it never reached their work)."""
        return [
            label
            for label, seen in self.statuses.items()
            if not any(200 <= status < 300 for status in seen)
        ]


def fuzz(operation: Any, mode: GenerationMode, served: Served, tally: Tally) -> Callable[[], None]:
    """A Hypothesis test of ``operation`` in ``mode``, with seeded ids mixed in."""
    label = f"{operation.label} ({mode.value})"
    strategies = [operation.as_strategy(generation_mode=mode)]
    for parameter in (p.name for p in operation.path_parameters):
        known = served.seeded.values(parameter)
        if known:
            strategies.append(st.sampled_from(known).flatmap(_with(operation, mode, parameter)))
    positive = mode == GenerationMode.POSITIVE
    if operation.label == "POST /api/runs" and positive and served.seeded.jobs:
        # Made-up job names name no job (a 422): batches of seeded jobs reach the work too.
        batches = st.lists(st.sampled_from(served.seeded.jobs), min_size=1, max_size=5)
        strategies.append(batches.flatmap(_batch_of(operation, mode)))
    if operation.label == "POST /api/schedules/preview" and positive:
        # Made-up schedule text is rarely a schedule (a 422): valid ones reach the maths too.
        bodies = st.sampled_from(PREVIEW_BODIES)
        strategies.append(bodies.flatmap(_body_of(operation, mode)))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def check(case: Any) -> None:
        tally.examples[label] += 1
        response = case.call(base_url=served.url)
        tally.statuses[operation.label][response.status_code] += 1
        case.validate_response(
            response,
            checks=CHECKS_FOR.get(operation.label, CHECKS),
            transport_kwargs={"base_url": served.url},
        )

    return check


def _with(operation: Any, mode: GenerationMode, parameter: str) -> Callable[[str], Any]:
    """Cases of ``operation`` whose path parameter ``parameter`` is a given value."""

    def strategy(value: str) -> Any:
        return operation.as_strategy(generation_mode=mode, path_parameters={parameter: value})

    return strategy


PREVIEW_BODIES: list[dict[str, Any]] = [
    {"schedule": "*/15 * * * *"},
    {"schedule": "30 2 * * *", "timezone": "Europe/Berlin", "count": 100},
    {"schedule": "30 * * * *", "timezone": "Europe/Berlin", "after": "2026-10-25T00:00:00Z"},
    {"schedule": "every 5m", "count": 1},
    {"schedule": "@yearly", "timezone": "Pacific/Kiritimati", "after": "8999-06-01T00:00:00"},
]


def _body_of(operation: Any, mode: GenerationMode) -> Callable[[dict[str, Any]], Any]:
    def strategy(body: dict[str, Any]) -> Any:
        return operation.as_strategy(generation_mode=mode, body=body)

    return strategy


def _batch_of(operation: Any, mode: GenerationMode) -> Callable[[list[str]], Any]:
    """Cases of ``POST /api/runs`` whose body triggers the given jobs."""

    def strategy(jobs: list[str]) -> Any:
        body = {"runs": [{"job": job} for job in jobs]}
        return operation.as_strategy(generation_mode=mode, body=body)

    return strategy


@pytest.mark.timeout(1800)  # bounded by EXAMPLES; the default runs in well under a minute
def test_the_api_survives_schemathesis(served: Served) -> None:
    schema = schemathesis.openapi.from_url(
        f"{served.url}/openapi.json",
        headers=served.headers,
        config=schemathesis.Config.from_dict({**CONFIG, "auth": auth(served.token)}),
    )
    tally = Tally()
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), [r for r in results if not isinstance(r, Ok)]
    fuzzed = [op for op in operations if op.label not in STREAMS]
    assert len(fuzzed) >= 15, [op.label for op in operations]
    with httpx.Client(base_url=served.url, headers=served.headers, timeout=30) as client:
        for operation in fuzzed:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                ensure_seed_jobs(client, served.seeded)
                try:
                    fuzz(operation, mode, served, tally)()
                except Unsatisfiable:  # a lone string parameter: no input is invalid
                    tally.no_negative.append(operation.label)
                except (Exception, BaseExceptionGroup) as e:  # every operation is tried
                    tally.failures[f"{operation.label} ({mode.value})"] = str(e)[:3000]
    summary = (
        f"{len(fuzzed)} operations, {sum(tally.examples.values())} examples, "
        f"{len(tally.failures)} failing"
    )
    log.info(
        "schemathesis: %s; statuses per operation: %s; no negative cases for: %s",
        summary,
        {label: dict(seen) for label, seen in tally.statuses.items()},
        tally.no_negative,
    )
    assert not tally.failures, (
        summary
        + "\n\n"
        + "\n\n".join(f"{label}:\n{text}" for label, text in tally.failures.items())
    )
    assert sum(tally.examples.values()) >= len(fuzzed) * 2, summary
    assert len(tally.statuses) == len(fuzzed), summary
    assert tally.unanswered() == ["GET /api/health"], tally.statuses  # its 503, see CHECKS_FOR


def ensure_seed_jobs(client: httpx.Client, seeded: Seeded) -> None:
    """The fuzzer may delete a seeded job (DELETE is an operation too): make it again."""
    for index, job in enumerate(SEED_JOBS):
        if client.get(f"/api/jobs/{seeded.jobs[index]}").status_code == 404:
            replacement = Seeded()
            ensure_job(client, job, replacement)
            seeded.jobs[index] = replacement.jobs[0]
