"""Tokens end to end: ``chronolog up``'s first admin token, the ``chronolog token`` CLI
against a stopped and a running Chronolog, and the refusal to open a non-loopback API
without tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from dashboard.sessions import COOKIE
from tests.conftest import wait_until
from tests.e2e.cluster import cluster_env
from tests.e2e.conftest import Server, free_port
from tests.sign_in import sign_in

pytestmark = pytest.mark.e2e


def cli(*args: str, data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "chronolog", *args, "--data-dir", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_up_makes_the_admin_token_once_and_keeps_it_private(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", free_port(), env=cluster_env())
    server.start()
    try:
        path = server.data_dir / "admin-token"
        assert path.stat().st_mode & 0o777 == 0o600
        token = path.read_text().strip()
        first = server.log_path.read_text()
        assert first.count(token) == 1  # printed once, with a ready curl line
        assert f'curl -H "Authorization: Bearer $(cat {path})"' in first
        assert httpx.get(f"{server.url}/api/jobs").status_code == 401
        assert httpx.get(f"{server.url}/api/jobs", headers=bearer(token)).status_code == 200
        assert server.stop() == 0
        server.start()
        again = server.log_path.read_text()[len(first) :]
        assert "Made the first API token" not in again and token not in again
        assert f"API token 'admin' is in {path}" in again
        assert path.read_text().strip() == token
        assert httpx.get(f"{server.url}/api/jobs", headers=bearer(token)).status_code == 200
    finally:
        if server.process is not None:
            server.stop()


def test_a_non_loopback_api_without_tokens_is_refused(tmp_path: Path) -> None:
    env = cluster_env()
    data_dir = tmp_path / "data"
    for command in (["up", "--no-dashboard", "--workers", "0"], ["api"]):
        args = [*command, "--api-host", "0.0.0.0", "--api-port", str(free_port())]
        refused = cli(*args, data_dir=data_dir, env=env)
        assert refused.returncode == 1, refused.stderr
        assert "no API token exists yet" in refused.stderr
        assert "chronolog token create --name NAME --role admin" in refused.stderr
    assert not (data_dir / "admin-token").exists()


def test_the_token_cli_with_and_without_a_running_chronolog(
    tmp_path: Path, stack: dict[str, str]
) -> None:
    env = cluster_env(stack)
    data_dir = tmp_path / "data"
    made = cli("token", "create", "--name", "ops", "--role", "operator", data_dir=data_dir, env=env)
    assert made.returncode == 0, made.stderr
    ops = made.stdout.strip()
    assert ops.startswith("chl_") and "shown only now" in made.stderr
    bad = cli("token", "create", "--name", "x", "--role", "viewer", "--expires", "soon",
              data_dir=data_dir, env=env)  # fmt: skip
    assert bad.returncode == 2 and "--expires" in bad.stderr

    # A token exists, so up makes none: the API is closed from its first request.
    server = Server(data_dir, free_port(), env=env)
    server.start()
    try:
        listed = cli("token", "list", data_dir=data_dir, env=env)
        assert listed.returncode == 0
        assert "ops" in listed.stdout and "operator" in listed.stdout and "active" in listed.stdout
        assert "chl_" not in listed.stdout
        taken = cli("token", "create", "--name", "ops", "--role", "viewer",
                    data_dir=data_dir, env=env)  # fmt: skip
        assert taken.returncode == 1 and "exists" in taken.stderr
        assert not (data_dir / "admin-token").exists()
        assert httpx.get(f"{server.url}/api/jobs").status_code == 401
        assert httpx.get(f"{server.url}/api/jobs", headers=bearer(ops)).status_code == 200
        made = cli("token", "create", "--name", "eve", "--role", "viewer", "--expires", "30d",
                   data_dir=data_dir, env=env)  # fmt: skip
        assert made.returncode == 0, made.stderr
        eve = made.stdout.strip()
        assert httpx.get(f"{server.url}/api/runs", headers=bearer(eve)).status_code == 200
        trigger = httpx.post(f"{server.url}/api/jobs/x/trigger", headers=bearer(eve), json={})
        assert trigger.status_code == 403
        revoked = cli("token", "revoke", "eve", data_dir=data_dir, env=env)
        assert revoked.returncode == 0, revoked.stderr
        wait_until(
            lambda: httpx.get(f"{server.url}/api/runs", headers=bearer(eve)).status_code == 401,
            timeout=5,
        )
        listed = cli("token", "list", data_dir=data_dir, env=env)
        assert "revoked" in listed.stdout and "cli:" in listed.stdout
        unknown = cli("token", "revoke", "nobody", data_dir=data_dir, env=env)
        assert unknown.returncode == 1 and "no token named 'nobody'" in unknown.stderr
    finally:
        server.stop()
    assert os.environ.get("CHRONOLOG_TOKEN") is None  # nothing leaked into the test process


def test_ups_dashboard_asks_for_a_sign_in_and_relays_as_the_signed_in_token(
    tmp_path: Path,
) -> None:
    dashboard_port = free_port()
    args = ["--dashboard-port", str(dashboard_port)]
    server = Server(tmp_path / "data", free_port(), extra_args=args, env=cluster_env())
    server.start()
    try:
        url = f"http://127.0.0.1:{dashboard_port}"

        def answers() -> bool:
            try:
                return httpx.get(f"{url}/login", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, timeout=30, interval=0.1)
        page = httpx.get(url, headers={"Accept": "text/html"}, timeout=5)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F"
        assert httpx.get(f"{url}/changes", timeout=5).status_code == 401

        # Signed in, the dashboard relays the API's change stream with the browser's
        # token (the API would answer a relay without one 401).
        cookies = {COOKIE: sign_in(url, server.token)}
        with httpx.stream("GET", f"{url}/changes", cookies=cookies, timeout=5) as response:
            assert next(response.iter_lines()) == ": connected"
    finally:
        server.stop()
