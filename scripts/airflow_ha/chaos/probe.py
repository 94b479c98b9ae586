"""A client polling the REST API through the load balancer while a fault happens."""

import threading
import time
from dataclasses import dataclass, field

from airflow_ha.airflow_api import AirflowApiError, AirflowClient, AnswerCutOff

POLL_INTERVAL_S = 0.05


@dataclass
class ProbeResult:
    requests: int = 0
    failed: int = 0
    # Answers the dying api-server broke off midway. The load balancer cannot
    # send those again (part of the answer has left), so the probe does, at
    # once, as any client of a GET would: only if that fails too is it failed.
    cut_off: int = 0
    errors: list[str] = field(default_factory=list)


class ApiProbe:
    """Sends GET /api/v2/dags?limit=1 every 50 ms in a thread until stopped."""

    def __init__(self, client: AirflowClient) -> None:
        # Its own session (this runs in a thread), and no retries: every failed
        # request counts (but for a cut-off answer, see ProbeResult).
        self._client = client.clone(retries=0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.result = ProbeResult()

    def _get(self) -> None:
        self._client.request("GET", "/api/v2/dags", params={"limit": 1})

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                try:
                    self._get()
                except AnswerCutOff:
                    self.result.cut_off += 1
                    self._get()
            except AirflowApiError as error:
                self.result.failed += 1
                if len(self.result.errors) < 5:
                    self.result.errors.append(str(error))
            self.result.requests += 1
            time.sleep(POLL_INTERVAL_S)

    def __enter__(self) -> "ApiProbe":
        self._get()  # log in first
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
