"""Fixtures that run ``chronolog`` as real processes on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def chronolog(*args: str, data_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "chronolog", *args, "--data-dir", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Server:
    """A ``chronolog up`` process that can be stopped and started again on its data."""

    data_dir: Path
    port: int
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "chronolog",
            "up",
            "--api-port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CHRONOLOG_") or k.startswith("CHRONOLOG_TEST_")
        }
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        wait_until(self._healthy, timeout=30, interval=0.1)

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            output = self.process.stdout.read() if self.process.stdout else ""
            raise AssertionError(f"chronolog up exited with {self.process.returncode}:\n{output}")
        try:
            return httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None
        return code


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data", free_port())
    running.start()
    yield running
    if running.process is not None:
        running.stop()
