"""The dashboard over a seeded read model: data callbacks, reads, page loads, live latency.

Seed first (bench/seed.py), then, from the repository root:

    .venv/bin/python -m bench.bench_dashboard callbacks --data-dir D [--database URL]
    .venv/bin/python -m bench.bench_dashboard reads --data-dir D [--database URL]
    .venv/bin/python -m bench.bench_dashboard browser --data-dir D [--database URL]
    .venv/bin/python -m bench.bench_dashboard live [--data-dir D]

- ``callbacks``: starts ``chronolog dashboard`` on the read model and times each page
  case through HTTP ``POST /_dash-update-component``, the browser's own path (routing,
  the page's layout, serialisation): first the page router (what a navigation costs),
  then each data callback. A case whose callback is not on this build says so.
- ``reads``: the dashboard's read functions (``projector.dashboard_reads``) and the
  plain queries the pages need, straight on the read model, with the database's plan:
  a plan that scans ``runs`` or sorts it is an index missing.
- ``browser``: Debian's chromium (Playwright) loads each page cold and waits for its
  data to be drawn: navigation start to rendered (target <= 1.5 s for the runs table).
- ``live``: ``chronolog up`` on the data dir (default: a fresh one); runs triggered
  through the API; for each, when the API first shows the run projected as ``running``,
  and when the open page shows it (a MutationObserver's timestamp): target p95 <= 1 s.

Each prints a table of p50 / p95 (ms) and writes bench/results/dashboard-<what>.json.
Cases are small entries in CALLBACKS, READS, QUERIES and PAGES: add one as a page lands.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Final, TypeAlias

import httpx2 as httpx
from sqlalchemy import Engine, Select, and_, desc, func, or_, select, text
from sqlalchemy.orm import Session

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
if str(REPO) not in sys.path:  # run as a file: sys.path[0] is bench/
    sys.path.insert(0, str(REPO))

from bench.auth import admin_headers, dashboard_session  # noqa: E402
from chronolog.settings import load_settings  # noqa: E402
from events.ids import idempotency_run_id  # noqa: E402
from projector.database import create_read_model_engine  # noqa: E402
from projector.tables import (  # noqa: E402
    EventIndexRecord,
    JobActivityRecord,
    JobDependencyRecord,
    JobRecord,
    RunAttemptRecord,
    RunRecord,
    WorkerRecord,
)

PAGE: Final = 50  # rows per page of a table
DEEP: Final = 999_980  # the deep page's offset at a million runs
TARGET_CALLBACK_P95_MS: Final = 150.0
TARGET_RENDER_MS: Final = 1500.0
TARGET_LIVE_P95_MS: Final = 1000.0


# --- what the cases are measured on ---------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """Ids from the seeded read model that the cases ask for."""

    now: datetime
    runs: int
    busiest_job: tuple[str, str]  # id, name: the job with the most runs
    quiet_job: tuple[str, str]
    failed_run: str  # a dead-lettered run: two attempts, nine events
    pipeline: str  # the correlation id of a dependency chain's run
    deep_key: tuple[datetime, str]  # (requested_at, id) of the run at offset DEEP (or last)


def sample(session: Session) -> Sample:
    runs = session.scalar(select(func.count()).select_from(RunRecord)) or 0
    per_job = (
        select(RunRecord.job_id, func.count().label("n")).group_by(RunRecord.job_id).subquery()
    )
    busiest = session.execute(
        select(JobRecord.id, JobRecord.name)
        .join(per_job, per_job.c.job_id == JobRecord.id)
        .order_by(per_job.c.n.desc())
        .limit(1)
    ).one()
    quiet = session.execute(
        select(JobRecord.id, JobRecord.name)
        .join(per_job, per_job.c.job_id == JobRecord.id)
        .order_by(per_job.c.n)
        .limit(1)
    ).one()
    failed = session.scalar(select(RunRecord.id).where(RunRecord.status == "failed").limit(1))
    pipeline = session.scalar(
        select(RunRecord.correlation_id).where(RunRecord.trigger == "dependency").limit(1)
    )
    newest_first = select(RunRecord.requested_at, RunRecord.id).order_by(
        RunRecord.requested_at.desc(), RunRecord.id.desc()
    )
    deep = session.execute(newest_first.offset(min(DEEP, max(runs - PAGE, 0))).limit(1)).one()
    return Sample(
        now=datetime.now(UTC),
        runs=runs,
        busiest_job=(busiest[0], busiest[1]),
        quiet_job=(quiet[0], quiet[1]),
        failed_run=failed or "",
        pipeline=pipeline or "",
        deep_key=(deep[0], deep[1]),
    )


# --- timing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    case: str
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None = None
    note: str = ""


def timed(case: str, action: Callable[[], object], repeat: int, note: str = "") -> Timing:
    action()  # warm: the first call pays imports, plans and caches
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return summary(case, times, note)


def summary(case: str, times: Sequence[float], note: str = "") -> Timing:
    if not times:
        return Timing(case, None, None, None, note)
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return Timing(case, statistics.median(ordered), p95, ordered[-1], note)


def table(title: str, timings: Sequence[Timing], target_ms: float) -> None:
    print(f"\n{title} (target p95 <= {target_ms:g} ms)")
    print(f"{'case':<44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  note")
    for t in timings:
        cells = [
            f"{v:8.1f}" if v is not None else f"{'-':>8}" for v in (t.p50_ms, t.p95_ms, t.max_ms)
        ]
        flag = " MISSED" if t.p95_ms is not None and t.p95_ms > target_ms else ""
        print(f"{t.case:<44} {' '.join(cells)}  {t.note}{flag}")


# --- callbacks over HTTP -----------------------------------------------------------------

Prop = tuple[Any, str]  # (component id, property)
Inputs = Callable[[Sample], list[tuple[Any, str, Any]]]  # (id, property, value) each


@dataclass(frozen=True)
class CallbackCase:
    """One data callback, called as the browser calls it: its outputs, its input values
    (``trigger`` indexes the one that changed), and its state values."""

    name: str
    outputs: tuple[Prop, ...]
    inputs: Inputs
    state: Inputs = lambda s: []
    trigger: int = 0


def route(url: Callable[[Sample], str]) -> Inputs:
    """The page router's inputs: what a navigation to ``url`` (path?query) asks for."""

    def inputs(s: Sample) -> list[tuple[Any, str, Any]]:
        path, _, query = url(s).partition("?")
        search = f"?{query}" if query else ""
        return [("_pages_location", "pathname", path), ("_pages_location", "search", search)]

    return inputs


def rows_request(start: int, size: int = PAGE) -> dict[str, Any]:
    """What AG Grid's infinite row model asks its callback for."""
    return {"startRow": start, "endRow": start + size, "sortModel": [], "filterModel": {}}


def runs_grid(
    start: int, query: Callable[[Sample], dict[str, str]], cursor: bool, label: str = ""
) -> CallbackCase:
    """The runs grid (branch h5) asking for rows ``start``..+50: with the key of the row
    before them when the grid has paged there (``cursor``), else from an offset."""

    def state(s: Sample) -> list[tuple[Any, str, Any]]:
        key = [s.deep_key[0].isoformat(), s.deep_key[1]]
        cursors = {str(start): key} if cursor else {}
        return [("runs-query", "data", query(s)), ("runs-cursors", "data", cursors)]

    outputs = (
        ("runs-grid", "getRowsResponse"),
        ("runs-cursors", "data"),
        ("runs-total", "children"),
    )
    name = f"runs: grid rows {start:,}" + (" (keyset)" if cursor and start else "")
    return CallbackCase(
        f"{name} {label}".strip(),
        outputs,
        lambda s: [("runs-grid", "getRowsRequest", rows_request(start))],
        state,
    )


ROUTER: Final = (("_pages_content", "children"), ("_pages_store", "data"))
LIVE: Final = ("live-change", "data", None)
JOBS_GRID: Final = (("jobs-grid", "getRowsResponse"), ("jobs-sort", "data"))
JOB_PAGE: Final = (
    ("job-header", "children"),
    ("job-body", "children"),
    ("job-pause", "disabled"),
    ("job-resume", "disabled"),
)
JOB_HISTORY: Final = (
    ("job-history", "children"),
    ("job-history-page", "data"),
    ("job-history-older", "disabled"),
)
RUN_PAGE: Final = tuple(
    (f"run-{name}", prop)
    for name, prop in (
        ("summary", "children"),
        ("attempts", "children"),
        ("output", "children"),
        ("events", "children"),
        ("cancel", "disabled"),
        ("retry", "disabled"),
        ("timing", "data"),
        ("live-key", "children"),
        ("live", "hidden"),
    )
)
DAG: Final = (("dag-graph", "elements"), ("dag-caption", "children"), ("dag-pipelines", "children"))

# A page's data callbacks, as they land (ids from the page modules: overview and job on
# branch h4, runs, run, workers and DAG on h5, analytics on h2). A case whose outputs
# are not registered on the running dashboard is listed "not on this build".
CALLBACKS: Final[tuple[CallbackCase, ...]] = (
    CallbackCase("overview: page", ROUTER, route(lambda s: "/")),
    CallbackCase("overview: counts", (("overview-counts", "children"),), lambda s: [LIVE]),
    CallbackCase(
        "overview: job grid rows 0",
        JOBS_GRID,
        lambda s: [("jobs-grid", "getRowsRequest", rows_request(0))],
        lambda s: [("jobs-query", "data", {})],
    ),
    CallbackCase(
        "overview: job grid rows 950",
        JOBS_GRID,
        lambda s: [("jobs-grid", "getRowsRequest", rows_request(950))],
        lambda s: [("jobs-query", "data", {})],
    ),
    CallbackCase("job: page (busiest job)", ROUTER, route(lambda s: f"/jobs/{s.busiest_job[1]}")),
    CallbackCase(
        "job: header and body (busiest)",
        JOB_PAGE,
        lambda s: [("job-id", "data", s.busiest_job[0]), LIVE, ("job-refresh", "data", None)],
    ),
    CallbackCase(
        "job: event history (busiest)",
        JOB_HISTORY,
        lambda s: [
            ("job-id", "data", s.busiest_job[0]),
            LIVE,
            ("job-refresh", "data", None),
            ("job-history-older", "n_clicks", None),
            ("job-history-newest", "n_clicks", None),
        ],
        lambda s: [("job-history-page", "data", None)],
    ),
    CallbackCase("runs: page", ROUTER, route(lambda s: "/runs")),
    runs_grid(0, lambda s: {}, cursor=False),
    runs_grid(DEEP, lambda s: {}, cursor=True),
    runs_grid(DEEP, lambda s: {}, cursor=False, label="(OFFSET)"),
    runs_grid(0, lambda s: {"status": "failed"}, cursor=False, label="status=failed"),
    runs_grid(0, lambda s: {"trigger": "manual"}, cursor=False, label="trigger=manual"),
    runs_grid(0, lambda s: {"trigger": "backfill"}, cursor=False, label="trigger=backfill (none)"),
    runs_grid(0, lambda s: {"job": s.busiest_job[1]}, cursor=False, label="job=busiest"),
    CallbackCase("run: page (dead-lettered run)", ROUTER, route(lambda s: f"/runs/{s.failed_run}")),
    CallbackCase(
        "run: its data (dead-lettered run)",
        RUN_PAGE,
        lambda s: [LIVE, ("run-id", "data", s.failed_run)],
        trigger=1,
    ),
    CallbackCase("workers: page", ROUTER, route(lambda s: "/workers")),
    CallbackCase(
        "workers: table",
        (("workers-table", "children"),),
        lambda s: [LIVE, ("workers-tick", "n_intervals", None)],
    ),
    CallbackCase("dag: page", ROUTER, route(lambda s: "/dag")),
    CallbackCase(
        "dag: graph", DAG, lambda s: [LIVE, ("dag-correlation-shown", "data", None)], trigger=1
    ),
    CallbackCase(
        "dag: graph of one pipeline",
        DAG,
        lambda s: [LIVE, ("dag-correlation-shown", "data", s.pipeline)],
        trigger=1,
    ),
    CallbackCase("analytics: page", ROUTER, route(lambda s: "/analytics")),
)


def callback_body(case: CallbackCase, s: Sample) -> dict[str, Any]:
    def name(prop: Prop) -> str:
        ident = prop[0] if isinstance(prop[0], str) else json.dumps(prop[0], sort_keys=True)
        return f"{ident}.{prop[1]}"

    outputs = [{"id": i, "property": p} for i, p in case.outputs]
    inputs = [{"id": i, "property": p, "value": v} for i, p, v in case.inputs(s)]
    many = len(outputs) > 1
    changed = inputs[case.trigger]
    return {
        "output": ".." + "...".join(name(o) for o in case.outputs) + ".."
        if many
        else name(case.outputs[0]),
        "outputs": outputs if many else outputs[0],
        "inputs": inputs,
        "changedPropIds": [name((changed["id"], changed["property"]))],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in case.state(s)],
    }


def registered(client: httpx.Client) -> set[str]:
    return {entry["output"] for entry in client.get("/_dash-dependencies").json()}


def call(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/_dash-update-component", json=body)
    if answer.status_code == 204:  # no update: the callback answered with nothing new
        return {}
    if answer.status_code != 200:
        raise RuntimeError(f"{body['output']}: HTTP {answer.status_code} {answer.text[:300]}")
    found: dict[str, Any] = answer.json()
    return found


def missing(client: httpx.Client, body: dict[str, Any], known: set[str]) -> str | None:
    """Why a case cannot be measured on this build, or None."""
    if body["output"] not in known:
        return "not on this build"
    title = call(client, body).get("response", {}).get("_pages_store", {}).get("data", {})
    if str(title.get("title", "")).startswith("Not found"):
        return "page not on this build"
    return None


def bench_callbacks(url: str, s: Sample, repeat: int) -> list[Timing]:
    timings = []
    # The dashboard refuses state-changing requests from other origins (its CSRF guard).
    with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as client:
        known = registered(client)
        for case in CALLBACKS:
            body = callback_body(case, s)
            if reason := missing(client, body, known):
                timings.append(Timing(case.name, None, None, note=reason))
                continue
            timings.append(timed(case.name, lambda b=body: call(client, b), repeat))  # type: ignore[misc]
    return timings


@contextmanager
def dashboard_server(env: dict[str, str], data_dir: Path) -> Iterator[str]:
    """``chronolog dashboard`` on the read model, with a ``chronolog api`` on the same data
    for it to check sign-ins with (a seeded read model has no tokens: the API is in open
    mode, and the dashboard lets the benchmark in as ``anonymous``); both stopped (by pid)
    after."""
    api_port, port = free_port(), free_port()
    data = ["--data-dir", str(data_dir)]
    api_url, url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{port}"
    chronolog = [sys.executable, "-m", "chronolog"]
    api = subprocess.Popen(
        [*chronolog, "api", "--api-port", str(api_port), *data], env=child_env(env), cwd=REPO
    )
    dashboard = subprocess.Popen(
        [*chronolog, "dashboard", "--port", str(port), "--api-url", api_url, *data],
        env=child_env(env),
        cwd=REPO,
    )
    try:
        wait_for(lambda: answers(f"{api_url}/api/health/live"), 60, f"chronolog api on {api_url}")
        wait_for(lambda: answers(f"{url}/login"), 60, f"chronolog dashboard on {url}")
        yield url
    finally:
        for child in (dashboard, api):
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=30)


def child_env(env: dict[str, str]) -> dict[str, str]:
    """A Chronolog process's environment: this checkout's code first (``python -m
    chronolog`` drops the working directory from its path), quiet logs."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **env, "PYTHONPATH": path, "CHRONOLOG_LOG_LEVEL": "WARNING"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:g} s")
        time.sleep(interval)


# --- reads straight on the read model ----------------------------------------------------

Read = Callable[[Session], object]
Statement: TypeAlias = Select[*tuple[Any, ...]]  # any columns


def reads_module(name: str = "projector.dashboard_reads") -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        return None


# The dashboard's read functions, by name: (name, builder of the call). A function or
# type not on this build raises AttributeError and the case says "not on this build".
READS: Final[tuple[tuple[str, Callable[[ModuleType, Sample], Read]], ...]] = (
    ("overview_counts", lambda m, s: lambda db: m.overview_counts(db, s.now)),
    (
        "job_page 1 by name",
        lambda m, s: lambda db: m.job_page(db, m.JobFilters(), m.JobSort(), 0, PAGE),
    ),
    (
        "job_page deep (offset 950)",
        lambda m, s: lambda db: m.job_page(db, m.JobFilters(), m.JobSort(), 950, PAGE),
    ),
    (
        "job_page search 'etl'",
        lambda m, s: lambda db: m.job_page(db, m.JobFilters(q="etl"), m.JobSort(), 0, PAGE),
    ),
    ("job_detail (busiest)", lambda m, s: lambda db: m.job_detail(db, s.busiest_job[1])),
    ("recent_runs 20 (busiest)", lambda m, s: lambda db: m.recent_runs(db, s.busiest_job[0], 20)),
    ("job_history 50 (busiest)", lambda m, s: lambda db: m.job_history(db, s.busiest_job[0], PAGE)),
    (
        "finished_samples 50 jobs x 20",
        lambda m, s: lambda db: m.finished_samples(db, job_ids(db), 20),
    ),
    ("runs_page 1", lambda m, s: lambda db: m.runs_page(db, m.RunFilters(), PAGE)),
    (
        "runs_page deep (keyset)",
        lambda m, s: lambda db: m.runs_page(db, m.RunFilters(), PAGE, after=m.RunKey(*s.deep_key)),
    ),
    (
        "runs_page status=failed",
        lambda m, s: lambda db: m.runs_page(db, m.RunFilters(status="failed"), PAGE),
    ),
    (
        "runs_page job=busiest",
        lambda m, s: lambda db: m.runs_page(db, m.RunFilters(job_id=s.busiest_job[0]), PAGE),
    ),
    (
        "runs_page trigger=manual",
        lambda m, s: lambda db: m.runs_page(db, m.RunFilters(trigger="manual"), PAGE),
    ),
    (
        "runs_page trigger=backfill (none)",
        lambda m, s: lambda db: m.runs_page(db, m.RunFilters(trigger="backfill"), PAGE),
    ),
    ("runs_total (capped)", lambda m, s: lambda db: m.runs_total(db, m.RunFilters())),
    ("run_detail (dead-lettered)", lambda m, s: lambda db: m.run_detail(db, s.failed_run)),
    ("workers_overview", lambda m, s: m.workers_overview),
    ("dag_graph", lambda m, s: m.dag_graph),
    ("dag_graph one pipeline", lambda m, s: lambda db: m.dag_graph(db, s.pipeline)),
    ("recent_pipelines", lambda m, s: m.recent_pipelines),
)


def day(s: Sample) -> tuple[datetime, datetime]:
    return s.now - timedelta(days=1), s.now


def month(s: Sample) -> tuple[datetime, datetime]:
    return s.now - timedelta(days=30), s.now


# The analytics page's reads over the roll-ups (projector/analytics_reads.py, branch h2).
# A roll-up table filled by the projector is needed: seed with the build that has it.
ANALYTICS: Final[tuple[tuple[str, Callable[[ModuleType, Sample], Read]], ...]] = (
    ("runs_per_minute, 24 h", lambda m, s: lambda db: m.runs_per_minute(db, *day(s))),
    ("runs_per_minute, 30 d", lambda m, s: lambda db: m.runs_per_minute(db, *month(s))),
    ("success_rate, 30 d", lambda m, s: lambda db: m.success_rate(db, *month(s))),
    ("duration_percentiles, 30 d", lambda m, s: lambda db: m.duration_percentiles(db, *month(s))),
    ("lateness_percentiles, 30 d", lambda m, s: lambda db: m.lateness_percentiles(db, *month(s))),
    ("queue_depth, 24 h", lambda m, s: lambda db: m.queue_depth(db, *day(s))),
    ("worker_utilisation, 24 h", lambda m, s: lambda db: m.worker_utilisation(db, *day(s))),
)


def job_ids(db: Session) -> list[str]:
    return list(db.scalars(select(JobRecord.id).order_by(JobRecord.name).limit(PAGE)))


def newest(query: Statement) -> Statement:
    return query.order_by(RunRecord.requested_at.desc(), RunRecord.id.desc()).limit(PAGE)


# The statements the pages need, written plainly: their plans say which indexes a
# million runs needs, whatever the read functions above become.
QUERIES: Final[tuple[tuple[str, Callable[[Sample], Statement]], ...]] = (
    ("runs newest first, page 1", lambda s: newest(select(RunRecord))),
    ("runs OFFSET 999,980", lambda s: newest(select(RunRecord)).offset(DEEP)),
    (
        "runs keyset after the 999,980th",
        lambda s: newest(select(RunRecord)).where(
            RunRecord.requested_at <= s.deep_key[0],
            or_(RunRecord.requested_at < s.deep_key[0], RunRecord.id < s.deep_key[1]),
        ),
    ),
    (
        "runs status=failed newest first",
        lambda s: newest(select(RunRecord).where(RunRecord.status == "failed")),
    ),
    (
        "runs status=completed newest first",
        lambda s: newest(select(RunRecord).where(RunRecord.status == "completed")),
    ),
    (
        "runs of the busiest job newest first",
        lambda s: newest(select(RunRecord).where(RunRecord.job_id == s.busiest_job[0])),
    ),
    (
        "runs trigger=manual newest first",
        lambda s: newest(select(RunRecord).where(RunRecord.trigger == "manual")),
    ),
    (
        "runs trigger=backfill (none) newest first",
        lambda s: newest(select(RunRecord).where(RunRecord.trigger == "backfill")),
    ),
    (
        "runs in a past day, status=failed",
        lambda s: newest(
            select(RunRecord).where(
                RunRecord.status == "failed",
                RunRecord.requested_at >= s.now - timedelta(days=20),
                RunRecord.requested_at < s.now - timedelta(days=19),
            )
        ),
    ),
    ("count(*) runs", lambda s: select(func.count()).select_from(RunRecord)),
    (
        "busiest job: success rate + avg duration, 30 d",
        lambda s: select(
            func.count(),
            func.sum(func.cast(RunRecord.status == "completed", RunRecord.attempt.type)),
            func.avg(RunRecord.duration_ms),
        ).where(
            RunRecord.job_id == s.busiest_job[0],
            RunRecord.requested_at >= s.now - timedelta(days=30),
        ),
    ),
    (
        "busiest job: last 20 runs",
        lambda s: (
            select(RunRecord)
            .where(RunRecord.job_id == s.busiest_job[0])
            .order_by(desc(RunRecord.requested_at))
            .limit(20)
        ),
    ),
    (
        "busiest job: its events newest first",
        lambda s: (
            select(EventIndexRecord)
            .where(EventIndexRecord.job_id == s.busiest_job[0])
            .order_by(EventIndexRecord.partition.desc(), EventIndexRecord.offset.desc())
            .limit(PAGE)
        ),
    ),
    (
        "run: attempts",
        lambda s: select(RunAttemptRecord).where(RunAttemptRecord.run_id == s.failed_run),
    ),
    (
        "run: its events",
        lambda s: (
            select(EventIndexRecord)
            .where(EventIndexRecord.run_id == s.failed_run)
            .order_by(EventIndexRecord.offset)
        ),
    ),
    (
        "workers + running runs each",
        lambda s: (
            select(WorkerRecord.id, func.count(RunRecord.id))
            .outerjoin(
                RunRecord,
                and_(RunRecord.worker_id == WorkerRecord.id, RunRecord.status == "running"),
            )
            .group_by(WorkerRecord.id)
        ),
    ),
    (
        "dag: jobs, edges, last status",
        lambda s: (
            select(
                JobRecord.id,
                JobRecord.name,
                JobActivityRecord.last_run_status,
                JobDependencyRecord.depends_on_id,
            )
            .outerjoin(JobActivityRecord, JobActivityRecord.job_id == JobRecord.id)
            .outerjoin(JobDependencyRecord, JobDependencyRecord.job_id == JobRecord.id)
        ),
    ),
    (
        "dag: one pipeline's runs",
        lambda s: select(RunRecord.job_id, RunRecord.status).where(
            RunRecord.correlation_id == s.pipeline
        ),
    ),
    (
        "analytics without roll-ups: 24 h by status",
        lambda s: (
            select(RunRecord.status, func.count())
            .where(RunRecord.finished_at >= s.now - timedelta(hours=24))
            .group_by(RunRecord.status)
        ),
    ),
)


def plan_of(db: Session, statement: Statement) -> str:
    """The database's plan, one line: where it scans or sorts is where an index is missing."""
    compiled = statement.compile(db.get_bind(), compile_kwargs={"literal_binds": True})
    if db.get_bind().dialect.name == "sqlite":
        rows = db.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        return "; ".join(str(row[-1]) for row in rows)
    rows = db.execute(text(f"EXPLAIN {compiled}")).all()
    return "; ".join(str(row[0]).strip() for row in rows if "->" in row[0] or row is rows[0])[:300]


def bench_functions(
    db: Session, module: ModuleType | None, cases: Sequence[tuple[str, Any]], s: Sample, repeat: int
) -> list[Timing]:
    timings = []
    for name, build in cases:
        try:
            if module is None:
                raise AttributeError("its module is not on this build")
            read = build(module, s)
            timings.append(timed(name, lambda r=read: r(db), repeat))  # type: ignore[misc]
        except AttributeError as e:
            timings.append(Timing(name, None, None, note=f"not on this build ({e})"))
        db.rollback()
    return timings


def bench_reads(
    engine: Engine, s: Sample, repeat: int, skip_queries: bool = False
) -> tuple[list[Timing], list[Timing]]:
    with Session(engine) as db:
        functions = bench_functions(db, reads_module(), READS, s, repeat)
        analytics = reads_module("projector.analytics_reads")
        functions += bench_functions(db, analytics, ANALYTICS, s, repeat)
        queries = []
        for name, statement in () if skip_queries else QUERIES:
            query = statement(s)
            run = lambda q=query: db.execute(q).all()  # noqa: E731
            queries.append(timed(name, run, repeat, plan_of(db, query)))
    return functions, queries


# --- the browser -----------------------------------------------------------------------

# (page, path, what must be visible once its data is drawn)
GRID_ROW: Final = ".ag-center-cols-container .ag-row:not(.ag-row-loading)"  # a row with data
OVERVIEW_DRAWN: Final = "#count-jobs .h4"
PAGES: Final[tuple[tuple[str, Callable[[Sample], str], str], ...]] = (
    ("overview counts", lambda s: "/", OVERVIEW_DRAWN),
    ("overview job list", lambda s: "/", GRID_ROW),
    ("runs table", lambda s: "/runs", GRID_ROW),
    ("runs table, status=failed", lambda s: "/runs?status=failed", GRID_ROW),
    ("job page (busiest)", lambda s: f"/jobs/{s.busiest_job[1]}", "h1"),
    ("run page (dead-lettered)", lambda s: f"/runs/{s.failed_run}", ".badge"),
)
CHROMIUM: Final = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


NAVIGATE: Final = """(path) => {
  window.history.pushState({}, '', path);
  window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));
}"""  # what a dcc.Link click does: the page changes without a reload


LOAD_EVENT_END: Final = "performance.getEntriesByType('navigation')[0].loadEventEnd"


def visible_after(page: Any, selector: str, go: Callable[[], None]) -> float:
    began = time.perf_counter()
    go()
    page.locator(selector).first.wait_for(state="visible", timeout=20_000)
    return (time.perf_counter() - began) * 1000


def render_times(
    browser: Any, root: str, path: str, selector: str, repeat: int
) -> dict[str, list[float]]:
    """Navigation start to ``selector`` visible: ``cold``, a fresh browser context (empty
    cache) each time; ``reload``, the page loaded again with the cache warm; ``in-app``,
    from the overview by a link, as a user moves between pages."""
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        for mode, took in visit(context.new_page(), root, path, selector).items():
            times.setdefault(mode, []).append(took)
        context.close()
    return times


def visit(page: Any, root: str, path: str, selector: str) -> dict[str, float]:
    cold = visible_after(page, selector, lambda: page.goto(root + path))
    # Of the cold load, the part before any callback: the HTML, Dash's scripts and CSS.
    loaded = float(page.evaluate(LOAD_EVENT_END))
    reload = visible_after(page, selector, lambda: page.goto(root + path))
    if path == "/":  # the overview is where in-app navigation starts
        return {"cold": cold, "cold, until the load event": loaded, "reload": reload}
    page.goto(root + "/")
    page.locator(OVERVIEW_DRAWN).first.wait_for(state="visible", timeout=20_000)
    in_app = visible_after(page, selector, lambda: page.evaluate(NAVIGATE, path))
    return {"cold": cold, "cold, until the load event": loaded, "reload": reload, "in-app": in_app}


def bench_browser(url: str, s: Sample, repeat: int) -> list[Timing]:
    timings = []
    with chromium() as browser:
        for name, path, selector in PAGES:
            try:
                times = render_times(browser, url, path(s), selector, repeat)
            except Exception as e:  # a page not on this build times out
                timings.append(Timing(name, None, None, note=f"not drawn: {type(e).__name__}"))
                continue
            for mode, measured in times.items():
                timings.append(summary(f"{name}: {mode}", measured, f"{path(s)} until {selector}"))
    return timings


# --- live: projected to visible ------------------------------------------------------------

WATCH_SCRIPT: Final = """(selector) => {
  window.__seen = [];
  const record = () => {
    const node = document.querySelector(selector);
    if (node) window.__seen.push([performance.timeOrigin + performance.now(), node.textContent]);
  };
  const watched = {subtree: true, childList: true, characterData: true};
  new MutationObserver(record).observe(document.body, watched);
  record();
}"""
RUNNING_COUNT: Final = "#count-running .h4"
RUN_BADGE: Final = "#run-summary .status-badge"


@dataclass(frozen=True)
class LiveJobs:
    """``solo`` (sleep 1) runs alone. ``queued`` (sleep 4) has one slot and queues the
    runs that find it taken, so a run's page can be opened (a cold page load takes
    seconds on 2 busy cores) while the run waits."""

    solo: str
    queued: str


def live_jobs(api: httpx.Client) -> LiveJobs:
    stamp = time.time_ns()
    ids = []
    for name, policy, seconds in (("solo", "forbid", 1), ("queued", "queue", 4)):
        job = {
            "name": f"{name}-{stamp}",
            "type": "shell",
            "command": f"sleep {seconds}",
            "concurrency_policy": policy,
        }
        created = api.post("/api/jobs", json=job)
        created.raise_for_status()
        ids.append(str(created.json()["id"]))
    return LiveJobs(*ids)


Shows = Callable[[str], bool]


def live_latency(
    api: httpx.Client, page: Any, root: str, jobs: LiveJobs, on_run_page: bool
) -> float:
    """One run: when the page showed it running minus when the API first did.

    The trigger answers only once the run is queued, and a worker may have started it
    by then: so run ids come from an idempotency key, and the status is polled from
    before the trigger is sent (from another thread)."""
    key = f"bench-{time.time_ns()}"
    job = jobs.queued if on_run_page else jobs.solo
    run_id = idempotency_run_id(job, key)
    triggers = []
    if on_run_page:
        triggers.append(trigger_when(api, jobs.queued, "running"))  # takes the one slot
        triggers.append(trigger_when(api, jobs.queued, "", key))  # waits for it
        shows, settled = watch_run_page(page, root, run_id)
    else:
        shows, settled = watch_running_count(page)
    sent = time.time()
    if not on_run_page:
        triggers.append(trigger_when(api, job, None, key))
    projected = first_seen(lambda: run_status(api, run_id) in ("running", "completed"))
    shown = page_time(page, shows, sent)
    wait_for(lambda: run_status(api, run_id) == "completed", 30, run_id)
    wait_for(settled, 30, "the page to show the run completed")
    for thread in triggers:
        thread.join()
    return (shown - projected) * 1000


def trigger_when(
    api: httpx.Client, job_id: str, status: str | None, key: str = ""
) -> threading.Thread:
    """Trigger ``job_id`` from a thread (the answer waits for the queue); with a
    ``status``, return once the API shows the run in it ("" for any)."""
    key = key or f"bench-{time.time_ns()}"
    auth = api.headers.get("Authorization", "")
    thread = threading.Thread(target=send_trigger, args=(str(api.base_url), job_id, key, auth))
    thread.start()
    if status is not None:
        run_id = idempotency_run_id(job_id, key)
        wait_for(lambda: run_status(api, run_id) in ((status,) if status else OPEN), 30, run_id)
    return thread


OPEN: Final = ("pending", "queued", "running")


def watch_run_page(page: Any, root: str, run_id: str) -> tuple[Shows, Callable[[], bool]]:
    """The run's page, open while the run waits for its job's one slot."""
    page.goto(f"{root}/runs/{run_id}")
    badge = page.locator(RUN_BADGE).first
    badge.wait_for(state="visible")
    page.evaluate(WATCH_SCRIPT, RUN_BADGE)
    return (lambda text: text.strip() == "running"), lambda: badge.inner_text() == "completed"


def watch_running_count(page: Any) -> tuple[Shows, Callable[[], bool]]:
    """The overview's "Running" count: up by one while the run runs, then back."""
    count = page.locator(RUNNING_COUNT)
    before = int(count.inner_text().strip())
    page.evaluate(WATCH_SCRIPT, RUNNING_COUNT)
    return (
        lambda text: text.strip().isdigit() and int(text) > before,
        lambda: count.inner_text().strip() == str(before),
    )


def run_status(api: httpx.Client, run_id: str) -> str | None:
    answer = api.get(f"/api/runs/{run_id}")
    return str(answer.json()["status"]) if answer.status_code == 200 else None


def send_trigger(api_url: str, job_id: str, key: str, auth: str) -> None:
    with httpx.Client(base_url=api_url, timeout=30) as client:
        headers = {"Idempotency-Key": key, "Authorization": auth}
        answer = client.post(f"/api/jobs/{job_id}/trigger", json={}, headers=headers)
        answer.raise_for_status()


def first_seen(check: Callable[[], bool], timeout: float = 30) -> float:
    """The wall time ``check`` first held, polled every 10 ms."""
    wait_for(check, timeout, "the run's projection", interval=0.01)
    return time.time()


def page_time(page: Any, shows: Callable[[str], bool], since: float, timeout: float = 30) -> float:
    """The wall time (s since the epoch) the page's watched text first satisfied ``shows``
    after ``since``, from the MutationObserver's record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for at, seen in page.evaluate("window.__seen"):
            if at / 1000 >= since and shows(seen):
                return float(at) / 1000
        time.sleep(0.02)
    raise TimeoutError("the page never showed the run")


@contextmanager
def chronolog_up(data_dir: Path, env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """``chronolog up`` with its dashboard: (API URL, dashboard URL); stopped by pid after."""
    api_port, dash_port = free_port(), free_port()
    command = [sys.executable, "-m", "chronolog", "up", "--data-dir", str(data_dir)]
    command += ["--api-port", str(api_port), "--dashboard-port", str(dash_port), "--workers", "1"]
    child = subprocess.Popen(command, env=child_env(env), cwd=REPO)
    try:
        api_url, dash_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}"
        wait_for(
            lambda: answers(f"{api_url}/api/health/live") and answers(f"{dash_url}/login"), 90, "up"
        )
        yield api_url, dash_url
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)


def bench_live(data_dir: Path, env: dict[str, str], runs: int) -> list[Timing]:
    """Per page: the overview's running count (any build with the change stream), and
    the run page's status badge (once the run page is on the build)."""
    timings = []
    with (
        chronolog_up(data_dir, env) as (api_url, root),
        chromium() as browser,
        httpx.Client(base_url=api_url, timeout=30, headers=admin_headers(data_dir)) as api,
    ):
        jobs = live_jobs(api)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        cookie = dashboard_session(root, admin_headers(data_dir)["Authorization"].split()[-1])
        context.add_cookies([{"name": "chronolog_session", "value": cookie, "url": root}])
        page = context.new_page()
        for name, on_run_page in (("overview running count", False), ("run page badge", True)):
            page.goto(root + "/")
            page.locator(RUNNING_COUNT).wait_for()
            try:
                times = [live_latency(api, page, root, jobs, on_run_page) for _ in range(runs)]
            except Exception as e:  # the page not on this build, or never updated
                timings.append(Timing(name, None, None, note=f"not shown: {type(e).__name__}"))
                continue
            timings.append(summary(f"projected -> visible: {name}", times, f"{runs} runs"))
    return timings


# --- the command ------------------------------------------------------------------------


def environment(args: argparse.Namespace) -> dict[str, str]:
    return {"CHRONOLOG_DATABASE_URL": args.database} if args.database else {}


def read_model(args: argparse.Namespace) -> Engine:
    settings = load_settings(environment(args), data_dir=args.data_dir)
    return create_read_model_engine(settings.database)


def write(
    what: str, args: argparse.Namespace, timings: Sequence[Timing], extra: dict[str, Any]
) -> None:
    production = args.database or (what == "live" and args.backend == "production")
    backend = "postgresql" if production else "sqlite"
    path = args.results / f"dashboard-{what}-{backend}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "read_model": backend,
        **extra,
        "timings": [t.__dict__ for t in timings],
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"wrote {path}")


def live(args: argparse.Namespace) -> None:
    """On the embedded defaults, or (``--backend production``) on Kafka + PostgreSQL + Redis
    started here (bench/stack.py)."""
    from bench.stack import backends

    with tempfile.TemporaryDirectory() as scratch, backends(args.backend) as stack:
        env = {**stack, **environment(args)}
        timings = bench_live(args.data_dir or Path(scratch), env, args.runs)
    table("Live: event projected -> visible on the page", timings, TARGET_LIVE_P95_MS)
    write("live", args, timings, {"backend": args.backend})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["callbacks", "reads", "browser", "live"])
    parser.add_argument("--data-dir", type=Path, help="a seeded data dir (bench/seed.py)")
    parser.add_argument("--database", help="a seeded read-model URL (default: DATA_DIR's)")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--runs", type=int, default=20, help="live: runs to watch")
    parser.add_argument(
        "--backend", choices=["embedded", "production"], default="embedded", help="live only"
    )
    parser.add_argument(
        "--skip-queries", action="store_true", help="reads: only the read functions"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.what == "live":
        live(args)
        return
    if args.data_dir is None:
        parser.error(f"{args.what} needs --data-dir (a seeded one)")
    engine = read_model(args)
    with Session(engine) as db:
        s = sample(db)
    extra = {"runs": s.runs, "sample": s.__dict__}
    if args.what == "reads":
        functions, queries = bench_reads(engine, s, args.repeat, args.skip_queries)
        table("Dashboard read functions", functions, TARGET_CALLBACK_P95_MS)
        table("Queries the pages need (plan in the note)", queries, TARGET_CALLBACK_P95_MS)
        write("reads", args, [*functions, *queries], extra)
    elif args.what == "callbacks":
        with dashboard_server(environment(args), args.data_dir) as url:
            timings = bench_callbacks(url, s, args.repeat)
        table("Callbacks through POST /_dash-update-component", timings, TARGET_CALLBACK_P95_MS)
        write("callbacks", args, timings, extra)
    else:
        with dashboard_server(environment(args), args.data_dir) as url:
            timings = bench_browser(url, s, max(3, args.repeat // 5))
        table("Browser: navigation to the page's data drawn", timings, TARGET_RENDER_MS)
        write("browser", args, timings, extra)
    engine.dispose()


if __name__ == "__main__":
    main()
