"""Resource bounds end to end: a job's huge error or huge output cannot bloat the log,
the lease store or the worker's memory."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, create_job, start_cluster, trigger, wait_for_run
from worker.output import ERROR_LIMIT

pytestmark = pytest.mark.e2e

HUGE_ERROR = 20_000_000
HUGE_OUTPUT = 200_000_000
RSS_BOUND = 150 * 1024 * 1024
LEASES_DB_BOUND = 20 * 1024 * 1024


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", workers=1, env=stack)
    yield running
    running.stop()


def log_bytes(data_dir: Path) -> int:
    """Bytes of records in the embedded event log (0 when the log is Kafka)."""
    path = data_dir / "events.db"
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        query = "SELECT COALESCE(SUM(length(value)), 0) FROM records"
        total: int = conn.execute(query).fetchone()[0]
    return total


def peak_rss(pid: int) -> int:
    """The highest resident set size the process has had, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def store_bytes(data_dir: Path) -> int:
    """The embedded lease store's size on disk, write-ahead log included."""
    return sum(p.stat().st_size for p in data_dir.glob("leases.db*"))


def test_a_20_mb_exception_message_is_stored_capped(cluster: Cluster) -> None:
    with cluster.api() as api:
        create_job(
            api,
            name="loud",
            type="python",
            function="tests.jobs.sample:fail_loudly",
            parameters={"size": HUGE_ERROR},
            retries=0,
        )
        before = log_bytes(cluster.data_dir)
        run_id = trigger(api, "loud")
        run = wait_for_run(api, run_id, lambda r: r["status"] in ("failed", "dead_lettered"))
        assert run["attempts"][-1]["status"] == "failed"
        error = run["attempts"][-1]["error"] or ""
        assert error.startswith("RuntimeError: xxx")
        assert "bytes truncated" in error
        assert len(error.encode()) <= ERROR_LIMIT
        # One failed run: an event for the failure and a few small ones, not 40 MB.
        assert log_bytes(cluster.data_dir) - before < 512 * 1024


def test_a_job_printing_200_mb_leaves_worker_memory_and_lease_store_bounded(
    cluster: Cluster,
) -> None:
    worker = cluster.workers[0]
    command = f"head -c {HUGE_OUTPUT} /dev/zero | tr '\\0' x; echo; echo done"
    with cluster.api() as api:
        create_job(api, name="chatty", type="shell", command=command, retries=0)
        run_id = trigger(api, "chatty")
        run = wait_for_run(api, run_id, lambda r: r["status"] == "completed", timeout=90)
    assert run["output"].endswith("x\ndone\n")
    rss, store = peak_rss(worker.pid), store_bytes(cluster.data_dir)
    assert (rss < RSS_BOUND, store < LEASES_DB_BOUND) == (True, True), (rss, store)
