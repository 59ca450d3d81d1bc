"""Benchmarks against ``chronolog up`` sign in with the admin token it makes on its first
start (``<data-dir>/admin-token``)."""

from __future__ import annotations

import time
from pathlib import Path


def admin_headers(data_dir: Path | str, timeout: float = 30) -> dict[str, str]:
    path = Path(data_dir) / "admin-token"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {path}: did chronolog up start?")
        time.sleep(0.05)
    return {"Authorization": f"Bearer {path.read_text().strip()}"}
