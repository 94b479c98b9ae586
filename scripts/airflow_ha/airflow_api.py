"""A small client of the Airflow 3 REST API (v2), for any Airflow 3 deployment.

It logs in through `POST /auth/token` (the auth manager's token endpoint) and
sends the token as a Bearer header, logging in again once if it expires.

It rides out a short outage (an api-server restarting, the load balancer
briefly without a replica): a request that may safely be sent twice is sent
again after a 502, 503 or 504 answer or a connection error, up to RETRIES
times with a growing pause, and once more at once if its answer broke off
midway (the api-server died while sending it: no load balancer can send that
request again, part of the answer has left). Each retry is reported on stderr.
Triggering a DAG run is never sent twice: a lost answer could mean the run
exists already.
"""

import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from airflow_ha.errors import ClusterError

JSON = dict[str, Any]

RETRY_STATUSES = frozenset({502, 503, 504})
RETRIES = 5
# urllib3 waits factor x 2^(n-1) before retry n > 1: 0, 1, 2, 4, 8 s, 15 s in all.
RETRY_BACKOFF_FACTOR = 0.5
# Requests that do the same thing when sent twice. POST is here for the login
# only; `trigger` sends its POST through a session that never retries.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "POST"})


def parse_time(value: Any) -> datetime | None:
    """A timestamp of the API ("...Z" or with an offset) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class AirflowApiError(ClusterError):
    """The API answered with an error, or could not be reached."""


class AnswerCutOff(AirflowApiError):
    """The API began an answer and broke it off: its server died while sending it."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


class ReportedRetry(Retry):
    """urllib3's Retry that says on stderr each time it sends a request again."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Self:
        following = super().increment(method, url, response, error, *args, **kwargs)
        reason = f"HTTP {response.status}" if response is not None else type(error).__name__
        path = urlsplit(url or "").path
        print(
            f"airflow-ha: {method} {path} got {reason}; sending it again in "
            f"{following.get_backoff_time():.0f} s (retry {len(following.history)} of {RETRIES})",
            file=sys.stderr,
            flush=True,
        )
        return following


def _session(retries: int, backoff: float) -> requests.Session:
    retry = ReportedRetry(
        total=retries,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=IDEMPOTENT_METHODS,
        backoff_factor=backoff,
        raise_on_status=False,  # the last answer is returned, and reported as an error
        respect_retry_after_header=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class AirflowClient:
    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        timeout: float = 30.0,
        retries: int = RETRIES,
        backoff: float | None = None,
    ) -> None:
        """`retries=0` gives a client that reports every failure (the chaos probe's)."""
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._timeout = timeout
        self._retries = retries
        self._backoff = RETRY_BACKOFF_FACTOR if backoff is None else backoff
        self._session = _session(retries, self._backoff)
        # For requests that must not be sent twice; a fresh connection each
        # time, so a keep-alive connection the server closed is never reused.
        self._once = _session(0, 0)
        self._once.headers["Connection"] = "close"
        self._token: str | None = None

    def clone(self, retries: int | None = None) -> "AirflowClient":
        """A new client for the same API and user (a requests.Session per thread)."""
        return AirflowClient(
            self.base_url,
            self._credentials,
            self._timeout,
            self._retries if retries is None else retries,
            self._backoff,
        )

    def _login(self) -> None:
        response = self._send(
            "POST",
            "/auth/token",
            json={"username": self._credentials.username, "password": self._credentials.password},
            authenticated=False,
        )
        if response.status_code in (401, 403):
            raise AirflowApiError(
                f"login to {self.base_url} as {self._credentials.username!r} was refused "
                f"(HTTP {response.status_code}): check the user and password"
            )
        self._raise_for_status(response, "POST /auth/token")
        token = self._json(response, "POST /auth/token").get("access_token")
        if not token:
            raise AirflowApiError(f"POST /auth/token at {self.base_url} returned no access_token")
        self._token = str(token)

    def _send(
        self,
        method: str,
        path: str,
        authenticated: bool = True,
        idempotent: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._token}"} if authenticated else {}
        session = self._session if idempotent else self._once
        try:
            return session.request(
                method, self.base_url + path, headers=headers, timeout=self._timeout, **kwargs
            )
        except requests.exceptions.ChunkedEncodingError as error:
            raise AnswerCutOff(
                f"the Airflow API at {self.base_url} broke off its answer: {error}"
            ) from None
        except requests.RequestException as error:
            raise AirflowApiError(
                f"cannot reach the Airflow API at {self.base_url}: {error}"
            ) from None

    def _send_whole(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Sends once more, at once, a request whose answer broke off, if it may
        be sent twice and this client retries at all."""
        try:
            return self._send(method, path, **kwargs)
        except AnswerCutOff as error:
            if self._retries == 0 or not kwargs.get("idempotent", True):
                raise
            print(
                f"airflow-ha: {method} {path}: {error}; sending it again",
                file=sys.stderr,
                flush=True,
            )
            return self._send(method, path, **kwargs)

    @staticmethod
    def _raise_for_status(response: requests.Response, what: str) -> None:
        if response.status_code >= 400:
            detail = response.text.strip().replace("\n", " ")[:300]
            raise AirflowApiError(f"{what} failed with HTTP {response.status_code}: {detail}")

    def request(
        self, method: str, path: str, allow_404: bool = False, **kwargs: Any
    ) -> JSON | None:
        if self._token is None:
            self._login()
        response = self._send_whole(method, path, **kwargs)
        if response.status_code == 401:
            self._login()
            response = self._send_whole(method, path, **kwargs)
        if allow_404 and response.status_code == 404:
            return None
        self._raise_for_status(response, f"{method} {path}")
        return self._json(response, f"{method} {path}") if response.content else {}

    @staticmethod
    def _json(response: requests.Response, what: str) -> JSON:
        try:
            result = response.json()
        except ValueError:
            raise AirflowApiError(
                f"{what} did not answer with JSON: {response.text[:200]!r}"
            ) from None
        if not isinstance(result, dict):
            raise AirflowApiError(f"{what} answered with {type(result).__name__}, not an object")
        return result

    def _get(self, path: str, **params: Any) -> JSON:
        return self.request("GET", path, params=params) or {}

    def _paged(self, path: str, key: str, **params: Any) -> list[JSON]:
        items: list[JSON] = []
        while True:
            page = self._get(path, limit=100, offset=len(items), **params)
            batch = page.get(key, [])
            items.extend(batch)
            if not batch or len(items) >= int(page.get("total_entries", 0)):
                return items

    def health(self) -> JSON:
        return self._get("/api/v2/monitor/health")

    def import_errors(self) -> list[JSON]:
        return self._paged("/api/v2/importErrors", "import_errors")

    def dag(self, dag_id: str) -> JSON | None:
        return self.request("GET", f"/api/v2/dags/{quote(dag_id, safe='')}", allow_404=True)

    def dags_tagged(self, tag: str) -> list[JSON]:
        return self._paged("/api/v2/dags", "dags", tags=tag)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/api/v2/dags/{quote(dag_id, safe='')}", json={"is_paused": paused})

    def trigger(
        self, dag_id: str, conf: JSON | None = None, logical_date: datetime | None = None
    ) -> JSON:
        """A new run, with no logical date unless one is given (the UI gives now)."""
        body = {
            "logical_date": logical_date.isoformat() if logical_date else None,
            "conf": conf or {},
        }
        path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns"
        return self.request("POST", path, json=body, idempotent=False) or {}

    def dag_runs(self, dag_id: str) -> list[JSON]:
        return self._paged(f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", "dag_runs")

    def dag_run(self, dag_id: str, run_id: str) -> JSON:
        return self._get(f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[JSON]:
        return self._paged(
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances",
            "task_instances",
        )

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> list[Any]:
        """A try's log: structured entries ({"event", "timestamp", "level", ...}) or
        plain lines, as the api-server read them."""
        path = (
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
            f"/taskInstances/{quote(task_id, safe='')}/logs/{try_number}"
        )
        answer = self._get(path, map_index=map_index, full_content="true")
        content = answer.get("content")
        return content if isinstance(content, list) else []

    def task_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[JSON]:
        """Every try of one task instance, each with its try_number and hostname."""
        path = (
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
            f"/taskInstances/{quote(task_id, safe='')}/tries"
        )
        return list(self._get(path, map_index=map_index).get("task_instances") or [])

    def event_logs(self, dag_id: str, run_id: str) -> list[JSON]:
        """Airflow's audit log for one DAG run: each task state change, and the
        scheduler's "heartbeat timeout" when it failed a silent task."""
        return self._paged("/api/v2/eventLogs", "event_logs", dag_id=dag_id, run_id=run_id)

    def task_instances_where(
        self, states: list[str], queues: list[str] | None = None
    ) -> list[JSON]:
        """Task instances of every DAG run in one of `states` (and of `queues`)."""
        filters: dict[str, Any] = {"state": states}
        if queues:
            filters["queue"] = queues
        return self._paged("/api/v2/dags/~/dagRuns/~/taskInstances", "task_instances", **filters)

    def xcom_value(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = (
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
            f"/taskInstances/{quote(task_id, safe='')}/xcomEntries/{quote(key, safe='')}"
        )
        entry = self._get(path, deserialize="true")
        return entry.get("value")

    # Users of the FAB auth manager (its own REST API, under /auth/fab/v1).

    def fab_users(self) -> list[JSON]:
        return self._paged("/auth/fab/v1/users", "users")

    def fab_user(self, username: str) -> JSON | None:
        return self.request("GET", f"/auth/fab/v1/users/{quote(username, safe='')}", allow_404=True)

    def create_fab_user(self, body: JSON) -> JSON:
        """Never sent twice: a lost answer could mean the user exists already."""
        return self.request("POST", "/auth/fab/v1/users", json=body, idempotent=False) or {}

    def delete_fab_user(self, username: str) -> bool:
        """False when there is no such user."""
        path = f"/auth/fab/v1/users/{quote(username, safe='')}"
        return self.request("DELETE", path, allow_404=True) is not None
