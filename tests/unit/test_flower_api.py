"""FlowerClient against a small Flower look-alike on 127.0.0.1."""

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_ha.flower_api import FlowerApiError, FlowerClient, WorkerInfo

PASSWORD = "flower-secret-0123456789"
WORKERS = {
    "celery@a1": {
        "stats": {"pool": {"max-concurrency": 4}},
        "active_queues": [{"name": "default"}],
        "active": [{"id": "t1"}, {"id": "t2"}],
    },
    "celery@b2": {
        "stats": {"pool": {"max-concurrency": 2}},
        "active_queues": [{"name": "heavy"}, {"name": "default"}],
        "active": [],
    },
}


class FakeFlower(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        expected = "Basic " + base64.b64encode(f"flower:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path != "/api/workers":
            self.send_response(404)
            self.end_headers()
            return
        if "workername" in query:
            name = query["workername"][0]
            body = {name: WORKERS[name]}
        else:  # like Flower: no task lists when asked about all workers
            body = {
                name: {k: v for k, v in info.items() if k != "active"}
                for name, info in WORKERS.items()
            }
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def flower_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeFlower)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_workers_have_queues_concurrency_and_active_tasks(flower_url: str) -> None:
    assert FlowerClient(flower_url, PASSWORD).workers() == [
        WorkerInfo("celery@a1", ("default",), 4, 2),
        WorkerInfo("celery@b2", ("default", "heavy"), 2, 0),
    ]


def test_a_refused_login_is_one_clear_error(flower_url: str) -> None:
    with pytest.raises(FlowerApiError, match="refused the login of user flower"):
        FlowerClient(flower_url, "wrong-password-000000").workers()


def test_an_unreachable_flower_is_one_clear_error() -> None:
    with pytest.raises(FlowerApiError, match="cannot reach Flower"):
        FlowerClient("http://127.0.0.1:9", PASSWORD, timeout=2).workers()
