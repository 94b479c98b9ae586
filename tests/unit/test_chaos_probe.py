"""chaos/probe.py: the API probe against a tiny fake Airflow API on 127.0.0.1."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

import pytest

from airflow_ha.airflow_api import AirflowApiError, AirflowClient, Credentials
from airflow_ha.chaos import probe

# --- probe: ApiProbe against a fake API on 127.0.0.1 ----------------------------------------

OK_GETS = 3  # the API answers this many GETs, then only 503s (as a load balancer without a replica)
FAILURES_WANTED = 8


class ProbeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ProbeHandler)
        self.lock = threading.Lock()
        self.logins = 0
        self.gets = 0
        self.authorizations: set[str | None] = set()
        self.queries: set[str] = set()
        self.failing = threading.Event()
        self.ok_gets = OK_GETS
        self.broken_off: set[int] = set()  # GETs (by number) whose answer breaks off midway

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class ProbeHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fake(self) -> ProbeServer:
        return cast(ProbeServer, self.server)

    def _reply(self, status: int, payload: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/auth/token":
            self._reply(404, b"{}", "application/json")
            return
        with self.fake.lock:
            self.fake.logins += 1
        self._reply(201, json.dumps({"access_token": "tok"}).encode(), "application/json")

    def do_GET(self) -> None:
        if not self.path.startswith("/api/v2/dags?"):
            self._reply(404, b"{}", "application/json")
            return
        with self.fake.lock:
            self.fake.gets += 1
            n = self.fake.gets
            self.fake.authorizations.add(self.headers.get("Authorization"))
            self.fake.queries.add(urlsplit(self.path).query)
        if n in self.fake.broken_off:  # as an api-server killed while it answers
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b'8\r\n{"dags":\r\n')
            self.close_connection = True
            return
        if n <= self.fake.ok_gets:
            self._reply(200, b'{"dags": [], "total_entries": 0}', "application/json")
            return
        if n - self.fake.ok_gets >= FAILURES_WANTED:
            self.fake.failing.set()
        self._reply(503, f"boom {n}".encode(), "text/plain")


@pytest.fixture
def probe_server() -> Iterator[ProbeServer]:
    server = ProbeServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_probe_counts_requests_and_failures(
    monkeypatch: pytest.MonkeyPatch, probe_server: ProbeServer
) -> None:
    monkeypatch.setattr(probe, "POLL_INTERVAL_S", 0.005)
    # The client the probe is made from sends a GET again after a 503 (at once:
    # no backoff); the probe must not, or a failure would hide behind a retry.
    client = AirflowClient(
        probe_server.url, Credentials("admin", "pw"), timeout=5, retries=3, backoff=0
    )
    api_probe = probe.ApiProbe(client)
    assert api_probe._thread.daemon  # a hung request never keeps `chaos` from exiting

    with api_probe as entered:
        assert entered is api_probe
        assert probe_server.logins == 1  # logged in before the thread starts
        assert probe_server.failing.wait(timeout=5), "the probe stopped sending requests"
    assert not api_probe._thread.is_alive()

    result = api_probe.result
    served = probe_server.gets
    # Every GET after the first one (sent by __enter__ to log in) is counted once,
    # none lost, none sent twice.
    assert result.requests == served - 1
    assert result.failed == served - OK_GETS
    assert result.failed >= FAILURES_WANTED
    assert result.requests - result.failed == OK_GETS - 1
    # Only the first five errors are kept, in order.
    assert len(result.errors) == 5
    for i, error in enumerate(result.errors):
        assert error == f"GET /api/v2/dags failed with HTTP 503: boom {OK_GETS + 1 + i}"
    assert probe_server.logins == 1
    assert probe_server.queries == {"limit=1"}  # one DAG per answer: a light request
    assert probe_server.authorizations == {"Bearer tok"}


@pytest.mark.parametrize(
    ("broken_off", "cut_off", "failed"),
    [
        ({3}, 1, 0),  # sent again at once, and answered: not a failed request
        ({3, 4}, 1, 1),  # sent again and broken off again: failed
        ({3, 5}, 2, 0),  # two answers broken off, each answered when sent again
    ],
)
def test_probe_sends_an_answer_broken_off_once_more(
    monkeypatch: pytest.MonkeyPatch,
    probe_server: ProbeServer,
    broken_off: set[int],
    cut_off: int,
    failed: int,
) -> None:
    monkeypatch.setattr(probe, "POLL_INTERVAL_S", 0.005)
    probe_server.ok_gets = 10  # then 503s, which stop the test
    probe_server.broken_off = broken_off
    api_probe = probe.ApiProbe(AirflowClient(probe_server.url, Credentials("admin", "pw")))
    with api_probe:
        assert probe_server.failing.wait(timeout=5), "the probe stopped sending requests"

    result = api_probe.result
    assert result.cut_off == cut_off
    assert result.failed - (probe_server.gets - probe_server.ok_gets) == failed
    assert result.requests == probe_server.gets - 1 - cut_off  # a request sent again is one
    if failed:
        assert "broke off its answer" in result.errors[0]


def test_probe_result_is_empty_before_it_runs() -> None:
    api_probe = probe.ApiProbe(AirflowClient("http://127.0.0.1:9", Credentials("a", "b")))
    assert (api_probe.result.requests, api_probe.result.failed, api_probe.result.errors) == (
        0,
        0,
        [],
    )
    assert not api_probe._thread.is_alive()


def test_a_probe_that_cannot_start_says_which_request_failed(probe_server: ProbeServer) -> None:
    probe_server.ok_gets = 0  # the API is down from the start
    client = AirflowClient(probe_server.url, Credentials("admin", "pw"), retries=0)
    api_probe = probe.ApiProbe(client)
    with (
        pytest.raises(AirflowApiError, match=r"^GET /api/v2/dags failed with HTTP 503: boom 1$"),
        api_probe,
    ):
        pass
    assert not api_probe._thread.is_alive()
    assert probe_server.gets == 1
