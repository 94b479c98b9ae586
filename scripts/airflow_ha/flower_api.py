"""Celery workers as Flower sees them, through Flower's authenticated REST API."""

from dataclasses import dataclass
from typing import Any

import requests

from airflow_ha.errors import ClusterError

FLOWER_USER = "flower"


class FlowerApiError(ClusterError):
    """Flower did not answer, or refused the login."""


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    queues: tuple[str, ...]
    concurrency: int | None
    active: int


class FlowerClient:
    def __init__(self, base_url: str, password: str, timeout: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.auth = (FLOWER_USER, password)
        self._timeout = timeout

    def _get(self, path: str, **params: str) -> dict[str, Any]:
        try:
            response = self._session.get(self.base_url + path, params=params, timeout=self._timeout)
        except requests.RequestException as error:
            raise FlowerApiError(f"cannot reach Flower at {self.base_url}: {error}") from None
        if response.status_code in (401, 403):
            raise FlowerApiError(f"Flower at {self.base_url} refused the login of user flower")
        if response.status_code >= 400:
            raise FlowerApiError(f"GET {path} on Flower failed with HTTP {response.status_code}")
        try:
            result = response.json()
        except ValueError:
            raise FlowerApiError(f"GET {path} on Flower did not answer with JSON") from None
        if not isinstance(result, dict):
            raise FlowerApiError(f"GET {path} on Flower answered with {type(result).__name__}")
        return result

    def workers(self) -> list[WorkerInfo]:
        """Every worker that answers Celery's broadcast, with its running tasks.

        Flower lists tasks only when asked about one worker, hence a second
        request per worker.
        """
        names = sorted(self._get("/api/workers", refresh="1"))
        return [self._worker(name) for name in names]

    def _worker(self, name: str) -> WorkerInfo:
        info = self._get("/api/workers", workername=name, refresh="1").get(name, {})
        pool = (info.get("stats") or {}).get("pool") or {}
        concurrency = pool.get("max-concurrency")
        return WorkerInfo(
            name=name,
            queues=tuple(sorted(str(q.get("name")) for q in info.get("active_queues") or [])),
            concurrency=int(concurrency) if concurrency is not None else None,
            active=len(info.get("active") or []),
        )
