"""A client polling the REST API through the load balancer while a fault happens."""

import threading
import time
from dataclasses import dataclass, field

from airflow_ha.airflow_api import AirflowApiError, AirflowClient

POLL_INTERVAL_S = 0.05


@dataclass
class ProbeResult:
    requests: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class ApiProbe:
    """Sends GET /api/v2/dags?limit=1 every 50 ms in a thread until stopped."""

    def __init__(self, client: AirflowClient) -> None:
        # Its own session (this runs in a thread), and no retries: every failed
        # request counts.
        self._client = client.clone(retries=0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.result = ProbeResult()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._client.request("GET", "/api/v2/dags", params={"limit": 1})
            except AirflowApiError as error:
                self.result.failed += 1
                if len(self.result.errors) < 5:
                    self.result.errors.append(str(error))
            self.result.requests += 1
            time.sleep(POLL_INTERVAL_S)

    def __enter__(self) -> "ApiProbe":
        self._client.request("GET", "/api/v2/dags", params={"limit": 1})  # log in first
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
