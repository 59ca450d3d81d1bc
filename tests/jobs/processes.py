"""Looking at processes from a test: is a pid still running?"""

from __future__ import annotations

from pathlib import Path


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (killed, not yet reaped by init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def read_pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]
