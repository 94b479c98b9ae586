"""Celery workers as Flower sees them, through Flower's authenticated REST API."""

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from airflow_ha.errors import ClusterError

FLOWER_USER = "flower"
# Flower and this CLI read the same kernel clock; allow for rounding only.
CLOCK_SLACK_SECONDS = 1.0


class FlowerApiError(ClusterError):
    """Flower did not answer, or refused the login or the command."""


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    queues: tuple[str, ...]
    concurrency: int | None
    active: int
    reserved: int = 0

    @property
    def hostname(self) -> str:
        """The container's hostname: Celery names workers celery@<hostname>."""
        return self.name.partition("@")[2] or self.name

    @property
    def busy(self) -> int:
        """Tasks it runs or has already taken from the broker."""
        return self.active + self.reserved


def _answered_since(info: dict[str, Any], moment: float) -> bool:
    """Flower lists every worker it ever saw; only a fresh answer proves one is there."""
    try:
        return float(info.get("timestamp", 0)) >= moment - CLOCK_SLACK_SECONDS
    except (TypeError, ValueError):
        return False


def _queues(info: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(str(q.get("name")) for q in info.get("active_queues") or []))


class FlowerClient:
    def __init__(self, base_url: str, password: str, timeout: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.auth = (FLOWER_USER, password)
        self._timeout = timeout

    def _call(self, method: str, path: str, params: dict[str, str]) -> requests.Response:
        try:
            response = self._session.request(
                method, self.base_url + path, params=params, timeout=self._timeout
            )
        except requests.RequestException as error:
            raise FlowerApiError(f"cannot reach Flower at {self.base_url}: {error}") from None
        if response.status_code == 401:
            raise FlowerApiError(f"Flower at {self.base_url} refused the login of user flower")
        return response

    def _get(self, path: str, **params: str) -> dict[str, Any] | None:
        """The JSON object at `path`, or None for a 404 (an unknown worker)."""
        response = self._call("GET", path, params)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise FlowerApiError(f"GET {path} on Flower failed with HTTP {response.status_code}")
        try:
            result = response.json()
        except ValueError:
            raise FlowerApiError(f"GET {path} on Flower did not answer with JSON") from None
        if not isinstance(result, dict):
            raise FlowerApiError(f"GET {path} on Flower answered with {type(result).__name__}")
        return result

    def _post(self, path: str, **params: str) -> None:
        response = self._call("POST", path, params)
        if response.status_code >= 400:
            reason = response.text.strip().splitlines()[0] if response.text.strip() else ""
            raise FlowerApiError(
                f"POST {path} on Flower failed with HTTP {response.status_code}"
                + (f": {reason}" if reason else "")
            )

    def queues_by_worker(self) -> dict[str, tuple[str, ...]]:
        """Workers that answered this very broadcast of Celery's inspect, and their queues."""
        asked_at = time.time()
        listing = self._get("/api/workers", refresh="1") or {}
        return {
            name: _queues(info)
            for name, info in sorted(listing.items())
            if isinstance(info, dict) and _answered_since(info, asked_at)
        }

    def workers(self) -> list[WorkerInfo]:
        """Every worker that answers, with its queues and tasks.

        Flower lists tasks only when asked about one worker, hence a request
        per worker; one that stops answering in between is left out.
        """
        found = (self.worker(name) for name in self.queues_by_worker())
        return [info for info in found if info is not None]

    def worker(self, name: str) -> WorkerInfo | None:
        """One worker, asked now; None when it does not answer."""
        asked_at = time.time()
        listing = self._get("/api/workers", workername=name, refresh="1") or {}
        info = listing.get(name)
        if not isinstance(info, dict) or not _answered_since(info, asked_at):
            return None
        pool = (info.get("stats") or {}).get("pool") or {}
        concurrency = pool.get("max-concurrency")
        return WorkerInfo(
            name=name,
            queues=_queues(info),
            concurrency=int(concurrency) if concurrency is not None else None,
            active=len(info.get("active") or []),
            reserved=len(info.get("reserved") or []),
        )

    def cancel_consumer(self, name: str, queue: str) -> None:
        """Make a worker stop taking tasks from `queue`; running ones go on."""
        self._post(f"/api/worker/queue/cancel-consumer/{quote(name, safe='@')}", queue=queue)

    def add_consumer(self, name: str, queue: str) -> None:
        self._post(f"/api/worker/queue/add-consumer/{quote(name, safe='@')}", queue=queue)
