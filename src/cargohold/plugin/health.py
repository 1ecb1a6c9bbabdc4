"""``grpc.health.v1`` on the plugin's socket, driven by a periodic, bounded probe of the store.

The health service answers from a status kept in memory, so a Check never waits on the backend.
A prober thread lists an empty prefix of the store (``<prefix>/health/``: one cheap LIST that
fails when the bucket, the credentials or the network are gone) every ``interval`` seconds. Each
probe runs on a thread of its own: one that has not answered within ``timeout`` seconds counts
as a failure, and while two probes hang no third is started. The newest probe that finished (or
timed out) decides: SERVING or NOT_SERVING, for the overall server (``""``) and for
``containerd.services.content.v1.Content``. Shutdown sets NOT_SERVING at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ..store import Store as ContentStore

__all__ = ["CONTENT_SERVICE", "HealthReporter", "store_probe"]

_log = logging.getLogger("cargohold.plugin.health")

CONTENT_SERVICE = "containerd.services.content.v1.Content"
_SERVICES = ("", CONTENT_SERVICE)
_MAX_HANGING = 2


def store_probe(store: ContentStore) -> Callable[[], None]:
    """A probe that lists ``<prefix>/health/`` (normally empty) and raises if the store fails."""
    prefix = f"{store.prefix}/health/" if store.prefix else "health/"
    driver = store.driver

    def probe() -> None:
        for _ in driver.list(prefix):
            break

    return probe


class HealthReporter:
    """The health servicer and the prober thread that keeps its status current."""

    def __init__(
        self,
        probe: Callable[[], None],
        *,
        interval: float = 10.0,
        timeout: float = 5.0,
        on_result: Callable[[bool], None] | None = None,
    ) -> None:
        self.servicer = health.HealthServicer()
        self._probe = probe
        self._interval = interval
        self._timeout = max(timeout, 0.1)
        self._on_result = on_result
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards the fields below; never held across a probe
        self._applied = 0
        self._healthy: bool | None = None
        self._hanging = 0
        self._seq = itertools.count(1)
        self._thread = threading.Thread(target=self._run, name="cargohold-health", daemon=True)

    def add_to_server(self, server: grpc.Server) -> None:
        """Serve ``grpc.health.v1.Health`` on ``server``."""
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    def start(self) -> None:
        """Probe once now (bounded by the timeout), then every ``interval`` seconds.

        With ``interval <= 0`` nothing is probed and the status stays SERVING.
        """
        if self._interval <= 0:
            self._set(True, "probing disabled")
            return
        self.probe_once()
        self._thread.start()

    def stop(self) -> None:
        """NOT_SERVING from now on; the prober stops within one interval."""
        self._stop.set()
        self.servicer.enter_graceful_shutdown()

    @property
    def healthy(self) -> bool | None:
        """The last verdict (None before the first probe ended)."""
        with self._lock:
            return self._healthy

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.probe_once()

    def probe_once(self) -> None:
        """Run one probe on its own thread and wait for it at most ``timeout`` seconds."""
        with self._lock:
            if self._hanging >= _MAX_HANGING:
                return
            self._hanging += 1
        seq = next(self._seq)
        finished = threading.Event()

        def run() -> None:
            error: BaseException | None = None
            try:
                self._probe()
            except Exception as exc:
                error = exc
            finally:
                with self._lock:
                    self._hanging -= 1
            finished.set()
            self._apply(seq, error is None, "" if error is None else f"{error}")

        threading.Thread(target=run, name=f"cargohold-health-probe-{seq}", daemon=True).start()
        if not finished.wait(self._timeout):
            self._apply(seq, False, f"the store did not answer within {self._timeout}s")

    def _apply(self, seq: int, ok: bool, reason: str) -> None:
        with self._lock:
            if seq < self._applied or self._stop.is_set():
                return
            self._applied = seq
        self._set(ok, reason)

    def _set(self, ok: bool, reason: str) -> None:
        with self._lock:
            changed, self._healthy = self._healthy != ok, ok
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ok
            else (health_pb2.HealthCheckResponse.NOT_SERVING)
        )
        for service in _SERVICES:
            self.servicer.set(service, status)
        if self._on_result is not None:
            self._on_result(ok)
        if not changed:
            return
        if ok:
            _log.info("store reachable: SERVING")
        else:
            _log.warning("store unreachable: NOT_SERVING", extra={"reason": reason[:500]})
