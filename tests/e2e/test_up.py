"""``chronolog up`` end to end over real HTTP: the demo, restarts, and replay recovery."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import httpx2 as httpx
import pytest

from dashboard.sessions import COOKIE
from tests.conftest import wait_until
from tests.e2e.conftest import Server, chronolog, free_port
from tests.samples import DAILY_REPORT, SEND_REPORT
from tests.sign_in import sign_in

pytestmark = pytest.mark.e2e


def run_demo(api: httpx.Client) -> None:
    created = api.post("/api/jobs", json=DAILY_REPORT)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["id"].startswith("job-")
    assert job["name"] == "daily-report"
    assert job["next_run"].endswith("T09:00:00Z")
    assert created.headers["location"] == f"/api/jobs/{job['id']}"
    # `curl -X POST … -d '{…}'` without the JSON header sends curl's default form content
    # type, as a web page's form would: refused, and the answer says what to send.
    form = {"content-type": "application/x-www-form-urlencoded"}
    refused = api.post("/api/jobs", content=json.dumps(SEND_REPORT), headers=form)
    assert refused.status_code == 415, refused.text
    assert "Content-Type: application/json" in refused.json()["message"]
    send = api.post("/api/jobs", json=SEND_REPORT)
    assert send.status_code == 201, send.text
    listed = api.get("/api/jobs", params={"tag": "reports"}).json()
    assert (listed["total"], [j["name"] for j in listed["jobs"]]) == (1, ["daily-report"])


def history(api: httpx.Client, ref: str) -> list[str]:
    return [event["type"] for event in api.get(f"/api/jobs/{ref}/events").json()["events"]]


def test_demo_over_http(server: Server) -> None:
    with server.client() as api:
        run_demo(api)
        assert api.get("/docs").status_code == 200
        assert (
            api.post("/api/jobs", json={**DAILY_REPORT, "schedule": "not cron"}).status_code == 422
        )


def test_jobs_and_histories_survive_a_restart(server: Server) -> None:
    with server.client() as api:
        run_demo(api)
        api.post("/api/jobs/daily-report/pause")
        before = api.get("/api/jobs").json()
    assert server.stop() == 0
    server.start()
    with server.client() as api:
        assert api.get("/api/jobs").json() == before
        assert history(api, "daily-report") == ["JobCreated", "JobPaused"]
        assert api.post("/api/jobs", json=DAILY_REPORT).status_code == 409


def test_a_second_up_on_the_same_data_is_refused(server: Server) -> None:
    result = chronolog("up", "--api-port", "1", data_dir=server.data_dir)
    assert result.returncode == 1
    assert "in use by pid" in result.stderr


def children_of(pid: int) -> dict[int, str]:
    """Command lines of ``pid``'s child processes, by pid (Linux /proc)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = command
    return found


def test_ups_projector_is_a_child_holding_ups_lock_and_is_restarted(server: Server) -> None:
    assert server.process is not None
    [projector] = [p for p, c in children_of(server.process.pid).items() if " projector " in c]
    alone = chronolog("projector", data_dir=server.data_dir)
    assert alone.returncode == 1
    assert "in use by pid" in alone.stderr
    os.kill(projector, signal.SIGKILL)
    with server.client() as api:
        run_demo(api)  # answers wait for the read model: a restarted projector made them
        assert api.get("/api/jobs/daily-report").status_code == 200
    restarted = [p for p, c in children_of(server.process.pid).items() if " projector " in c]
    assert restarted and restarted != [projector]
    assert server.stop() == 0
    assert not Path(f"/proc/{restarted[0]}").exists()


def test_replay_recovers_a_deleted_read_model(server: Server) -> None:
    with server.client() as api:
        run_demo(api)
        api.put("/api/jobs/daily-report", json={"retries": 5})
        before = api.get("/api/jobs").json()
    server.stop()
    (server.data_dir / "readmodel.db").unlink()

    check = chronolog("replay", "--check", data_dir=server.data_dir)
    assert check.returncode == 1  # the live read model is gone, so it differs
    result = chronolog("replay", data_dir=server.data_dir)
    assert result.returncode == 0, result.stderr
    # Every event of the log: the admin token's, the 3 of the jobs, and the worker's
    # registration and deregistration if it got to register before the stop.
    with sqlite3.connect(server.data_dir / "events.db") as log:
        (logged,) = log.execute("SELECT count(*) FROM records").fetchone()
    assert logged >= 4
    assert f"Replayed {logged} events" in result.stdout
    assert "replay" in result.stderr  # the progress bar
    assert chronolog("replay", "--check", data_dir=server.data_dir).returncode == 0

    server.start()
    with server.client() as api:  # the replayed token table still knows the admin token
        assert api.get("/api/jobs").json() == before
        assert history(api, "daily-report") == ["JobCreated", "JobUpdated"]


def test_up_serves_the_dashboard_and_says_where(tmp_path: Path) -> None:
    port = free_port()
    server = Server(tmp_path / "data", free_port(), extra_args=["--dashboard-port", str(port)])
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{url}/login"), timeout=30, interval=0.1)
        first = httpx.get(url, headers={"Accept": "text/html"}, follow_redirects=True)
        assert "<title>Sign in - Chronolog</title>" in first.text  # asks for the token
        cookies = {COOKIE: sign_in(url, server.token)}
        assert "<title>Chronolog</title>" in httpx.get(url, cookies=cookies).text
        assert f"Dashboard: {url}" in server.log_path.read_text()
    finally:
        server.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
