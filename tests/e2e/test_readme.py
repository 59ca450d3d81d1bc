"""The README's tour, followed literally: every ``curl`` of it, run by ``bash`` against a
``chronolog up`` started the README way, with the tour's python job modules copied as it
says and a worker started as it says. The JSON keys its example answers show must be in
the real answers, so the README cannot drift from the API again."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
README_PORT = "8000"
EXAMPLE_RUN_ID = "run-8c1e…"
# Answers the tour shows as acceptable besides 2xx: a cancel or retry of the run it
# triggered, which has completed by then (only open runs cancel, only failed ones retry).
MAY_CONFLICT = ("/cancel", "/retry")


@dataclass
class Command:
    """One shell command of the README and the example answer written under it."""

    text: str
    comments: list[str] = field(default_factory=list)

    @property
    def shown_status(self) -> int | None:
        """The status code the README shows first in its example answer, if it does."""
        shown = re.match(r"\s*#?\s*(\d{3}) ", self.comments[0]) if self.comments else None
        return int(shown.group(1)) if shown else None

    @property
    def shown_keys(self) -> set[str]:
        """JSON keys the README's example answer names."""
        return set(re.findall(r'"(\w+)":', "\n".join(self.comments)))


def tour_commands(readme: str) -> list[Command]:
    """The commands of the ``bash`` blocks between "A tour of the API" and "The CLI"."""
    tour = readme.split("## A tour of the API", 1)[1].split("\n## The CLI", 1)[0]
    commands: list[Command] = []
    for block in re.findall(r"```bash\n(.*?)```", tour, flags=re.S):
        commands.extend(_commands_of(block))
    return commands


def _commands_of(block: str) -> Iterator[Command]:
    pending: list[str] = []
    current: Command | None = None
    for line in block.splitlines():
        if not pending and line.lstrip().startswith("#"):
            if current is not None:
                current.comments.append(line)
            continue
        pending.append(line)
        text = "\n".join(pending)
        if text.count("'") % 2 == 0 and not line.rstrip().endswith("\\"):
            if current is not None:
                yield current
            current = Command(text, [line.split("#", 1)[1]] if " #" in line else [])
            pending = []
    if current is not None:
        yield current


def stream_data(body: str) -> list[Any]:
    """The JSON of each ``data:`` line of a server-sent-event stream."""
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


def keys_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


@dataclass
class Tour:
    app_dir: Path
    port: int
    dashboard_port: int = 0
    run_id: str | None = None
    exported: dict[str, str] = field(default_factory=dict)  # the tour's `export NAME=...`

    @property
    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOLOG_")}
        # The README's `chronolog up` as written; only the dashboard's port is moved off
        # 8050 (the one setting it has no flag for in the command), so tests never collide.
        dashboard = {"CHRONOLOG_DASHBOARD_PORT": str(self.dashboard_port)}
        path = f"{VENV_BIN}{os.pathsep}{clean.get('PATH', '')}"
        return {**clean, **dashboard, **self.exported, "PATH": path}

    def export(self, command: Command) -> None:
        """The README's ``export NAME=...`` line, run by bash; later commands see NAME."""
        name = command.text.removeprefix("export ").split("=", 1)[0]
        script = f'{command.text.split(" #", 1)[0]}; printf %s "${name}"'
        done = subprocess.run(
            ["bash", "-c", script], cwd=self.app_dir, env=self.env, capture_output=True,
            text=True, timeout=10, check=True,
        )  # fmt: skip
        assert done.stdout, f"{command.text} set nothing"
        self.exported[name] = done.stdout

    def localise(self, text: str) -> str:
        text = text.replace(f"localhost:{README_PORT}", f"127.0.0.1:{self.port}")
        if self.run_id is not None:
            text = text.replace(EXAMPLE_RUN_ID, self.run_id)
        return text

    def curl(self, command: Command) -> tuple[int, str]:
        """Run the README's curl as written, only told to print the status code after it."""
        text = self.localise(command.text)
        assert EXAMPLE_RUN_ID not in text, f"no run triggered yet for: {command.text}"
        text = text.replace("curl ", "curl -sS -w '\\n%{http_code}' ", 1)
        done = subprocess.run(
            ["bash", "-c", text],
            cwd=self.app_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        # A stream the README bounds with --max-time ends with curl's timeout (exit 28).
        timed_out = done.returncode == 28 and "--max-time" in text
        assert done.returncode == 0 or timed_out, f"{text}\n{done.stderr}"
        body, _, status = done.stdout.rpartition("\n")
        return int(status), body


@pytest.fixture
def tour(tmp_path: Path) -> Iterator[Tour]:
    """``chronolog up`` started from a directory holding the tour's job modules, copied as
    the README says (``cp examples/reports.py examples/mailer.py .``), on its defaults."""
    app_dir = tmp_path / "project"
    app_dir.mkdir()
    for module in ("reports.py", "mailer.py"):
        shutil.copy(ROOT / "examples" / module, app_dir)
    started = Tour(app_dir, free_port(), free_port())
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        ["chronolog", "up", "--api-port", str(started.port)],
        cwd=app_dir,
        env=started.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: _healthy(started, up), timeout=60, interval=0.2)
        yield started
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
        log.close()


def _healthy(tour: Tour, up: subprocess.Popen[bytes]) -> bool:
    assert up.poll() is None, f"chronolog up exited with {up.returncode}"
    try:
        return httpx.get(f"http://127.0.0.1:{tour.port}/api/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _dashboard_answers(url: str) -> bool:
    """The dashboard's first page: its sign-in form (the token comes from the README)."""
    try:
        page = httpx.get(url, timeout=2, headers={"Accept": "text/html"}, follow_redirects=True)
        return "<title>Sign in - Chronolog</title>" in page.text
    except httpx.TransportError:
        return False


def start_worker(tour: Tour, command: Command) -> subprocess.Popen[str]:
    """The README's ``chronolog worker ...`` line, run by bash in the project directory;
    what it prints is checked against the README (its logs go to stderr, kept aside)."""
    with (tour.app_dir.parent / "worker.log").open("w") as log:
        worker = subprocess.Popen(
            ["bash", "-c", f"exec {command.text.split('#', 1)[0]}"],
            cwd=tour.app_dir,
            env=tour.env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        assert worker.stdout is not None
        lines = [worker.stdout.readline(), worker.stdout.readline()]
        assert re.fullmatch(r"Worker worker-\w+ registered\n", lines[0]), lines
        assert lines[1] == "Listening for jobs...\n", lines
    except BaseException:
        worker.kill()
        worker.communicate(timeout=30)
        raise
    return worker


def wait_for_completion(tour: Tour) -> dict[str, Any]:
    url = f"http://127.0.0.1:{tour.port}/api/runs/{tour.run_id}"
    seen: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {tour.exported['TOKEN']}"}

    def completed() -> bool:
        seen.update(httpx.get(url, timeout=5, headers=headers).json())
        return seen["status"] in ("completed", "failed")

    wait_until(completed, timeout=60, interval=0.1)
    return seen


def test_the_readme_tour_works_as_written(tour: Tour) -> None:
    commands = tour_commands(README.read_text())
    assert sum(c.text.startswith("curl") for c in commands) >= 20
    dashboard = f"http://127.0.0.1:{tour.dashboard_port}"
    wait_until(lambda: _dashboard_answers(dashboard), timeout=30, interval=0.2)  # no extra step
    worker: subprocess.Popen[str] | None = None
    try:
        for command in commands:
            if command.text.startswith("chronolog worker"):
                worker = start_worker(tour, command)
                continue
            if command.text.startswith("export "):
                tour.export(command)
                continue
            assert command.text.startswith("curl"), f"not part of the tour test: {command.text}"
            status, body = tour.curl(command)
            if command.shown_status is not None:
                assert status == command.shown_status, f"{command.text}\n{status} {body}"
            else:
                allowed = {409} if any(p in command.text for p in MAY_CONFLICT) else set()
                assert 200 <= status < 300 or status in allowed, f"{command.text}\n{status} {body}"
            if status == 409 or "/output/live" in command.text:
                continue
            answer: Any = stream_data(body) if " -N " in command.text else json.loads(body)
            missing = command.shown_keys - keys_in(answer)
            assert not missing, f"the README shows {missing} for {command.text}\nbut: {body}"
            if "/trigger" in command.text:
                tour.run_id = answer["run_id"]
                run = wait_for_completion(tour)
                assert run["status"] == "completed", run
                assert "Report generated" in run["output"]
                assert run["result"] == {"recipients": ["ops@example.com"], "sections": 3}
                assert run["attempts"][0]["worker"].startswith("worker-")
        assert worker is not None, "the tour starts a worker"
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.communicate(timeout=60)  # reads what is left and closes the pipe


def test_the_tour_is_read_whole() -> None:
    """The parser sees every command: multi-line bodies and continuations are joined."""
    commands = tour_commands(README.read_text())
    create = next(c for c in commands if "daily-report" in c.text and "POST" in c.text)
    assert create.text.endswith('"tags": ["reports"]}\'')
    assert {"id", "schedule_type", "next_run", "status", "version"} <= create.shown_keys
    assert create.shown_status == 201
    put = next(c for c in commands if c.text.startswith("curl") and " -X PUT " in c.text)
    assert "every 30m" in put.text
    refused = next(c for c in commands if "61 * * * *" in c.text)
    assert refused.shown_status == 422
    assert {"error", "message", "errors", "field", "reason"} <= refused.shown_keys


def test_every_tour_command_with_a_body_sends_it_as_json() -> None:
    # The API refuses any other body with 415 (no cross-site writes): a reader copying a
    # command without the header would be refused.
    commands = tour_commands(README.read_text())
    with_body = [c.text for c in commands if re.search(r"\s(-d|--data(-\w+)?)\s", c.text)]
    assert len(with_body) >= 5
    for text in with_body:
        assert '-H "Content-Type: application/json"' in text, text
