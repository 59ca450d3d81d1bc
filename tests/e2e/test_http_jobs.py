"""HTTP jobs end to end: a JSON body and the run's parameters reach a real server, and
its JSON answer becomes the run's result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, create_job, start_cluster, trigger, wait_for_run
from tests.http_server import serving

pytestmark = pytest.mark.e2e


class _Receiver(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = {"path": self.path, "body": json.loads(self.rfile.read(length) or b"null")}
        self.server.received.append(received)
        answer = json.dumps({"accepted": True, "echo": received}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:
        self.do_POST()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    received: list[dict[str, Any]]


@pytest.fixture
def receiver() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Receiver)
    httpd.received = []
    with serving(httpd):
        yield httpd


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    # The receiver listens on loopback, which HTTP jobs reach only when allowed.
    running = start_cluster(
        tmp_path / "data", workers=1, env={**stack, "CHRONOLOG_HTTP_ALLOW": "127.0.0.1"}
    )
    yield running
    running.stop()


def test_http_jobs_send_json_and_parameters_and_keep_a_json_answer(
    cluster: Cluster, receiver: _Server
) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    body = {"report": "daily", "days": [1, 2]}
    with cluster.api() as api:
        create_job(api, name="post", type="http", url=url, method="POST", body=body, retries=0)
        create_job(api, name="get", type="http", url=url, parameters={"day": 3}, retries=0)
        posted = trigger(api, "post")
        got = trigger(api, "get", json={"parameters": {"team": "ops"}})
        post_run = wait_for_run(api, posted, lambda r: r["status"] == "completed")
        get_run = wait_for_run(api, got, lambda r: r["status"] == "completed")
    assert post_run["result"] == {"accepted": True, "echo": {"path": "/hook", "body": body}}
    assert get_run["result"] == {
        "accepted": True,
        "echo": {"path": "/hook?day=3&team=ops", "body": None},
    }
    assert (post_run["output"], get_run["output"]) == ("", "")
