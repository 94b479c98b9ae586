"""airflow_api.py against a small fake Airflow API served on 127.0.0.1 (no network)."""

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_ha.airflow_api import AirflowApiError, AirflowClient, AnswerCutOff, Credentials
from airflow_ha.errors import ExitCode

USER = "admin"
PASSWORD = "right-password-0123456789"
IMPORT_ERRORS_TOTAL = 150


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class ApiState:
    """What the fake API does, and what it was asked."""

    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    reject_every_token: bool = False
    login_status: int | None = None  # force this status on POST /auth/token
    # Statuses to answer, one per request, before answering normally.
    outage: list[int] = field(default_factory=list)
    # Answers to break off midway, one per request, before answering normally
    # (as an api-server killed while it sends one): with a Content-Length the
    # body is short, chunked the last chunk never comes.
    cut_off: list[str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    @property
    def logins(self) -> int:
        return sum(1 for s in self.seen if s.path == "/auth/token")


class FakeApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = ApiState()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean

    @property
    def state(self) -> ApiState:
        return cast(FakeApiServer, self.server).state

    def _reply(self, status: int, body: Any = None, text: str | None = None) -> None:
        payload = text.encode() if text is not None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if text is not None else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _record(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.state.seen.append(
            Seen(self.command, self.path, self.headers.get("Authorization"), body)
        )
        return body

    def _in_outage(self) -> bool:
        if self.state.outage:
            self._reply(self.state.outage.pop(0), text="no server is available")
            return True
        if self.state.cut_off:
            framing = self.state.cut_off.pop(0)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if framing == "chunked":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b'8\r\n{"dag_id\r\n')
            else:
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b'{"dag_id')
            self.close_connection = True
            return True
        return False

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization") or ""
        token = header.removeprefix("Bearer ")
        ok = (
            header.startswith("Bearer ")
            and token in self.state.issued
            and token not in self.state.revoked
            and not self.state.reject_every_token
        )
        if not ok:
            self._reply(401, {"detail": "Not authenticated"})
        return ok

    def do_POST(self) -> None:
        body = self._record()
        path = urlsplit(self.path).path
        if self._in_outage():
            return
        if path == "/auth/token":
            if self.state.login_status is not None:
                self._reply(self.state.login_status, text="token endpoint\nis broken")
            elif body == {"username": USER, "password": PASSWORD}:
                token = f"token-{len(self.state.issued) + 1}"
                self.state.issued.append(token)
                self._reply(201, {"access_token": token})
            else:
                self._reply(401, {"detail": "Invalid credentials"})
        elif path.endswith("/dagRuns") and self._authorized():
            self._reply(200, {"dag_run_id": "manual__1", "state": "queued"})

    def do_PATCH(self) -> None:
        body = self._record()
        if not self._in_outage() and self._authorized():
            self._reply(200, {"dag_id": "d", **body})

    def do_GET(self) -> None:
        self._record()
        if self._in_outage() or not self._authorized():
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/api/v2/monitor/health":
            self._reply(200, {"metadatabase": {"status": "healthy"}})
        elif url.path == "/api/v2/dags/missing":
            self._reply(404, {"detail": "DAG not found"})
        elif url.path == "/api/v2/dags/broken":
            self._reply(500, text="Internal Server Error\nTraceback (most recent call last)")
        elif url.path == "/api/v2/dags/empty":
            self._reply(200, text="")
        elif url.path.startswith("/api/v2/dags/"):
            self._reply(200, {"dag_id": url.path.removeprefix("/api/v2/dags/")})
        elif url.path == "/api/v2/importErrors":
            offset, limit = int(query["offset"][0]), int(query["limit"][0])
            end = min(offset + limit, IMPORT_ERRORS_TOTAL)
            errors = [{"filename": f"f{i}.py"} for i in range(offset, end)]
            self._reply(200, {"import_errors": errors, "total_entries": IMPORT_ERRORS_TOTAL})
        else:
            self._reply(404, {"detail": "no such route"})


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(variable, "127.0.0.1,localhost")
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def client(api: FakeApiServer) -> AirflowClient:
    return AirflowClient(api.url, Credentials(USER, PASSWORD), timeout=5, backoff=0)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_login_then_bearer_token(api: FakeApiServer, client: AirflowClient) -> None:
    assert client.health() == {"metadatabase": {"status": "healthy"}}
    assert client.dag("example") == {"dag_id": "example"}

    [login, health, dag] = api.state.seen
    assert (login.method, login.path) == ("POST", "/auth/token")
    assert login.authorization is None
    assert login.body == {"username": USER, "password": PASSWORD}
    assert (health.method, health.path, health.authorization) == (
        "GET",
        "/api/v2/monitor/health",
        "Bearer token-1",
    )
    assert dag.authorization == "Bearer token-1"  # the token is reused


def test_an_expired_token_means_one_new_login(api: FakeApiServer, client: AirflowClient) -> None:
    client.health()
    api.state.revoked.add("token-1")

    assert client.health() == {"metadatabase": {"status": "healthy"}}

    assert [(s.method, s.path, s.authorization) for s in api.state.seen[2:]] == [
        ("GET", "/api/v2/monitor/health", "Bearer token-1"),
        ("POST", "/auth/token", None),
        ("GET", "/api/v2/monitor/health", "Bearer token-2"),
    ]


def test_a_token_rejected_twice_is_an_error_not_a_loop(
    api: FakeApiServer, client: AirflowClient
) -> None:
    api.state.reject_every_token = True
    with pytest.raises(AirflowApiError, match=r"GET /api/v2/monitor/health failed with HTTP 401"):
        client.health()
    assert api.state.logins == 2


def test_allow_404_returns_none(api: FakeApiServer, client: AirflowClient) -> None:
    assert client.dag("missing") is None
    assert client.request("GET", "/api/v2/dags/missing", allow_404=True) is None


def test_404_without_allow_404_is_an_error(client: AirflowClient) -> None:
    with pytest.raises(AirflowApiError) as caught:
        client.request("GET", "/api/v2/dags/missing")
    assert str(caught.value) == (
        'GET /api/v2/dags/missing failed with HTTP 404: {"detail": "DAG not found"}'
    )


def test_server_error_is_one_line_with_the_body(client: AirflowClient) -> None:
    with pytest.raises(AirflowApiError) as caught:
        client.dag("broken")
    assert str(caught.value) == (
        "GET /api/v2/dags/broken failed with HTTP 500: "
        "Internal Server Error Traceback (most recent call last)"
    )
    assert caught.value.exit_code == ExitCode.FAILED


def test_an_empty_answer_is_an_empty_dict(client: AirflowClient) -> None:
    assert client.request("GET", "/api/v2/dags/empty") == {}


def test_dag_ids_are_quoted_in_paths(api: FakeApiServer, client: AirflowClient) -> None:
    client.dag("a/b c")
    assert api.state.seen[-1].path == "/api/v2/dags/a%2Fb%20c"


def test_set_paused_and_trigger_send_their_bodies(
    api: FakeApiServer, client: AirflowClient
) -> None:
    client.set_paused("d", paused=False)
    created = client.trigger("d")

    patch, post = api.state.seen[1:]
    assert (patch.method, patch.path, patch.body) == (
        "PATCH",
        "/api/v2/dags/d",
        {"is_paused": False},
    )
    assert (post.method, post.path) == ("POST", "/api/v2/dags/d/dagRuns")
    assert post.body == {"logical_date": None, "conf": {}}
    assert created == {"dag_run_id": "manual__1", "state": "queued"}


def test_paged_lists_are_read_to_the_end(api: FakeApiServer, client: AirflowClient) -> None:
    errors = client.import_errors()

    assert [e["filename"] for e in errors] == [f"f{i}.py" for i in range(IMPORT_ERRORS_TOTAL)]
    pages = [parse_qs(urlsplit(s.path).query) for s in api.state.seen if s.method == "GET"]
    assert [(p["offset"], p["limit"]) for p in pages] == [(["0"], ["100"]), (["100"], ["100"])]


def test_a_trailing_slash_in_the_url_is_ignored(api: FakeApiServer) -> None:
    client = AirflowClient(api.url + "/", Credentials(USER, PASSWORD), timeout=5)
    client.health()
    assert [s.path for s in api.state.seen] == ["/auth/token", "/api/v2/monitor/health"]


@pytest.mark.parametrize("password", ["wrong-password-0123456789", ""])
def test_a_refused_login_names_the_user(api: FakeApiServer, password: str) -> None:
    client = AirflowClient(api.url, Credentials("someone", password), timeout=5)
    with pytest.raises(AirflowApiError) as caught:
        client.health()
    message = str(caught.value)
    assert "'someone'" in message
    assert "refused (HTTP 401)" in message
    assert api.url in message
    if password:
        assert password not in message
    assert "\n" not in message
    assert api.state.logins == 1  # no retry with the same wrong password


def test_a_forbidden_login_is_refused_too(api: FakeApiServer, client: AirflowClient) -> None:
    api.state.login_status = 403
    with pytest.raises(AirflowApiError, match=r"as 'admin' was refused \(HTTP 403\)"):
        client.health()


def test_a_broken_token_endpoint(api: FakeApiServer, client: AirflowClient) -> None:
    api.state.login_status = 500
    with pytest.raises(AirflowApiError) as caught:
        client.health()
    assert str(caught.value) == ("POST /auth/token failed with HTTP 500: token endpoint is broken")


def test_an_unreachable_api(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(variable, "127.0.0.1,localhost")
    url = f"http://127.0.0.1:{closed_port()}"
    client = AirflowClient(url, Credentials(USER, PASSWORD), timeout=5, backoff=0)
    with pytest.raises(AirflowApiError) as caught:
        client.health()
    message = str(caught.value)
    assert message.startswith(f"cannot reach the Airflow API at {url}: ")
    assert "\n" not in message


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_short_outage_is_ridden_out_and_reported(
    api: FakeApiServer, client: AirflowClient, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    client.health()
    api.state.outage = [status, status]

    assert client.dag("d") == {"dag_id": "d"}
    client.set_paused("d", paused=True)

    assert [s.path for s in api.state.seen[2:]] == ["/api/v2/dags/d"] * 3 + ["/api/v2/dags/d"]
    assert capsys.readouterr().err.splitlines() == [
        f"airflow-ha: GET /api/v2/dags/d got HTTP {status}; sending it again in 0 s (retry 1 of 5)",
        f"airflow-ha: GET /api/v2/dags/d got HTTP {status}; sending it again in 0 s (retry 2 of 5)",
    ]


def test_the_login_rides_out_an_outage_too(api: FakeApiServer, client: AirflowClient) -> None:
    api.state.outage = [503]
    assert client.health() == {"metadatabase": {"status": "healthy"}}
    assert api.state.logins == 2


def test_the_backoff_grows_and_is_bounded(
    api: FakeApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    client = AirflowClient(api.url, Credentials(USER, PASSWORD), timeout=5, backoff=0.001)
    client.health()
    api.state.outage = [503] * 10

    with pytest.raises(AirflowApiError, match=r"GET /api/v2/dags/d failed with HTTP 503"):
        client.dag("d")

    assert len(api.state.seen) == 2 + 6  # one try and five retries
    retries = capsys.readouterr().err.splitlines()
    assert [line.rsplit("(", 1)[1] for line in retries] == [f"retry {n} of 5)" for n in range(1, 6)]


def test_a_persistent_error_other_than_an_outage_is_not_retried(
    api: FakeApiServer, client: AirflowClient
) -> None:
    client.health()
    api.state.outage = [500]
    with pytest.raises(AirflowApiError, match=r"HTTP 500"):
        client.dag("d")
    assert len(api.state.seen) == 3


def test_a_trigger_is_never_sent_twice(api: FakeApiServer, client: AirflowClient) -> None:
    client.health()
    api.state.outage = [503]
    with pytest.raises(AirflowApiError, match=r"POST /api/v2/dags/d/dagRuns failed with HTTP 503"):
        client.trigger("d")
    assert [s.method for s in api.state.seen[2:]] == ["POST"]


def test_a_clone_without_retries_reports_the_first_failure(
    api: FakeApiServer, client: AirflowClient
) -> None:
    probe = client.clone(retries=0)
    probe.health()
    api.state.outage = [503]
    with pytest.raises(AirflowApiError, match=r"HTTP 503"):
        probe.health()
    assert client.clone().health() == {"metadatabase": {"status": "healthy"}}


def test_an_unreachable_api_is_tried_again_before_giving_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(variable, "127.0.0.1,localhost")
    client = AirflowClient(
        f"http://127.0.0.1:{closed_port()}", Credentials(USER, PASSWORD), timeout=5, backoff=0
    )
    with pytest.raises(AirflowApiError, match="cannot reach"):
        client.health()
    assert len(capsys.readouterr().err.splitlines()) == 5


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_an_answer_broken_off_is_asked_for_once_more(
    api: FakeApiServer, client: AirflowClient, framing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client.health()
    api.state.cut_off = [framing]

    assert client.dag("d") == {"dag_id": "d"}

    assert [s.path for s in api.state.seen[2:]] == ["/api/v2/dags/d"] * 2
    (said,) = capsys.readouterr().err.splitlines()
    assert said.startswith(
        f"airflow-ha: GET /api/v2/dags/d: the Airflow API at {api.url} broke off its answer: "
    )
    assert said.endswith("; sending it again")


def test_an_answer_broken_off_twice_is_an_error(api: FakeApiServer, client: AirflowClient) -> None:
    client.health()
    api.state.cut_off = ["chunked", "chunked"]
    with pytest.raises(AnswerCutOff, match=f"^the Airflow API at {api.url} broke off its answer: "):
        client.dag("d")
    assert len(api.state.seen) == 2 + 2


def test_a_trigger_broken_off_is_not_sent_again(api: FakeApiServer, client: AirflowClient) -> None:
    client.health()
    api.state.cut_off = ["content-length"]
    with pytest.raises(AnswerCutOff):
        client.trigger("d")
    assert [s.method for s in api.state.seen[2:]] == ["POST"]


def test_a_clone_without_retries_reports_an_answer_broken_off(
    api: FakeApiServer, client: AirflowClient
) -> None:
    probe = client.clone(retries=0)
    probe.health()
    api.state.cut_off = ["chunked"]
    with pytest.raises(AnswerCutOff):
        probe.health()
    assert len(api.state.seen) == 2 + 1
