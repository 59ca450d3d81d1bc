"""Benchmarks against ``chronolog up`` sign in with the admin token it makes on its first
start (``<data-dir>/admin-token``)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx2 as httpx


def admin_headers(data_dir: Path | str, timeout: float = 30) -> dict[str, str]:
    path = Path(data_dir) / "admin-token"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {path}: did chronolog up start?")
        time.sleep(0.05)
    return {"Authorization": f"Bearer {path.read_text().strip()}"}


def dashboard_session(dashboard_url: str, token: str) -> str:
    """Sign in to the dashboard with ``token`` as its form does: the session cookie."""
    with httpx.Client(base_url=dashboard_url, timeout=30) as client:
        found = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        if found is None:
            raise SystemExit(f"{dashboard_url}/login has no sign-in form")
        answer = client.post(
            "/login",
            data={"token": token, "csrf": found.group(1), "next": "/"},
            headers={"Origin": dashboard_url},
        )
        if answer.status_code != 303:
            raise SystemExit(f"signing in to {dashboard_url} failed: {answer.text[:200]}")
        return str(client.cookies["chronolog_session"])


# The API, projector and scheduler of ``chronolog up`` without its first-start token step:
# a server that stays in open mode until a token is made through it. Run as
# ``python -c OPEN_SERVER DATA_DIR PORT``.
OPEN_SERVER = """
import sys
from pathlib import Path
from chronolog.logs import configure_logging
from chronolog.settings import Settings
from chronolog import serving
configure_logging("WARNING", "text")
settings = Settings(data_dir=Path(sys.argv[1]), api_port=int(sys.argv[2]), log_level="WARNING")
serving.serve(settings, projector=True, scheduler=True, workers=0, concurrency=1)
"""
