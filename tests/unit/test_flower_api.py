"""FlowerClient against a small Flower look-alike on 127.0.0.1."""

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from airflow_ha.flower_api import FlowerApiError, FlowerClient, WorkerInfo

PASSWORD = "flower-secret-0123456789"
WORKERS: dict[str, dict[str, Any]] = {
    "celery@a1": {
        "stats": {"pool": {"max-concurrency": 4}},
        "active_queues": [{"name": "default"}],
        "active": [{"id": "t1"}, {"id": "t2"}],
        "reserved": [{"id": "t3"}],
    },
    "celery@b2": {
        "stats": {"pool": {"max-concurrency": 2}},
        "active_queues": [{"name": "heavy"}, {"name": "default"}],
        "active": [],
        "reserved": [],
    },
    # Gone for an hour: Flower keeps listing it, with its last answer's time.
    "celery@gone": {
        "stats": {"pool": {"max-concurrency": 4}},
        "active_queues": [{"name": "default"}],
        "active": [],
        "stale": True,
    },
}


class FakeFlower(BaseHTTPRequestHandler):
    posts: ClassVar[list[tuple[str, str]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _authorised(self) -> bool:
        expected = "Basic " + base64.b64encode(f"flower:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") == expected:
            return True
        self._reply(401, b"")
        return False

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if not self._authorised():
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path != "/api/workers":
            self._reply(404, b"")
            return

        def answer(info: dict[str, Any]) -> dict[str, Any]:
            stamp = time.time() - 3600 if info.get("stale") else time.time()
            return {k: v for k, v in info.items() if k != "stale"} | {"timestamp": stamp}

        if "workername" in query:
            name = query["workername"][0]
            if name not in WORKERS:
                self._reply(404, f"Unknown worker '{name}'".encode())
                return
            body = {name: answer(WORKERS[name])}
        else:  # like Flower: no task lists when asked about all workers
            body = {
                name: {k: v for k, v in answer(info).items() if k not in ("active", "reserved")}
                for name, info in WORKERS.items()
            }
        self._reply(200, json.dumps(body).encode())

    def do_POST(self) -> None:
        if not self._authorised():
            return
        url = urlsplit(self.path)
        action, _, worker = url.path.removeprefix("/api/worker/queue/").partition("/")
        worker = unquote(worker)
        queue = parse_qs(url.query)["queue"][0]
        if worker not in WORKERS:
            self._reply(404, f"Unknown worker '{worker}'".encode())
        elif queue == "refused":
            self._reply(403, b"Failed to cancel 'refused' consumer from 'celery@a1' worker: nope")
        else:
            self.posts.append((action, f"{worker} {queue}"))
            self._reply(200, b'{"message": "ok"}')


@pytest.fixture
def flower_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    FakeFlower.posts.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeFlower)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_workers_have_queues_concurrency_and_tasks(flower_url: str) -> None:
    assert FlowerClient(flower_url, PASSWORD).workers() == [
        WorkerInfo("celery@a1", ("default",), 4, active=2, reserved=1),
        WorkerInfo("celery@b2", ("default", "heavy"), 2, active=0, reserved=0),
    ]


def test_a_worker_that_no_longer_answers_is_left_out(flower_url: str) -> None:
    client = FlowerClient(flower_url, PASSWORD)

    assert "celery@gone" not in client.queues_by_worker()
    assert client.worker("celery@gone") is None
    assert client.worker("celery@never-seen") is None


def test_queues_by_worker(flower_url: str) -> None:
    assert FlowerClient(flower_url, PASSWORD).queues_by_worker() == {
        "celery@a1": ("default",),
        "celery@b2": ("default", "heavy"),
    }


def test_busy_counts_running_and_reserved_tasks() -> None:
    info = WorkerInfo("celery@0123abcd", ("default",), 4, active=2, reserved=1)
    assert info.busy == 3
    assert info.hostname == "0123abcd"


def test_consumers_are_cancelled_and_added_per_queue(flower_url: str) -> None:
    client = FlowerClient(flower_url, PASSWORD)

    client.cancel_consumer("celery@a1", "default")
    client.add_consumer("celery@a1", "default")

    assert FakeFlower.posts == [
        ("cancel-consumer", "celery@a1 default"),
        ("add-consumer", "celery@a1 default"),
    ]


def test_a_refused_command_names_flowers_reason(flower_url: str) -> None:
    with pytest.raises(FlowerApiError, match=r"HTTP 403: Failed to cancel 'refused'"):
        FlowerClient(flower_url, PASSWORD).cancel_consumer("celery@a1", "refused")


def test_a_refused_login_is_one_clear_error(flower_url: str) -> None:
    with pytest.raises(FlowerApiError, match="refused the login of user flower"):
        FlowerClient(flower_url, "wrong-password-000000").workers()


def test_an_unreachable_flower_is_one_clear_error() -> None:
    with pytest.raises(FlowerApiError, match="cannot reach Flower"):
        FlowerClient("http://127.0.0.1:9", PASSWORD, timeout=2).workers()
