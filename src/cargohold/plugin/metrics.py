"""Opt-in Prometheus metrics for ``cargohold serve --metrics-address HOST:PORT``.

Everything lives in one registry of its own (never prometheus_client's global one), served over
plain HTTP at ``/metrics``. RPC figures come from the interceptor (``calls.py``), driver figures
from the driver wrapper's observer hook (``drivers/wrapper.py``), backend reachability from the
health prober. Names:

* ``cargohold_rpc_handled_total{service,method,code}``, ``cargohold_rpc_duration_seconds``
  (histogram, by service and method), ``cargohold_rpc_in_flight``
* ``cargohold_rpc_received_bytes_total`` / ``cargohold_rpc_sent_bytes_total`` (request /
  response messages as on the wire: Write data in, Read data out)
* ``cargohold_open_writers``: Write streams holding a writer
* ``cargohold_part_uploads_in_flight``
* ``cargohold_driver_requests_total{operation,outcome}``,
  ``cargohold_driver_request_duration_seconds`` (histogram, by operation)
* ``cargohold_store_up`` (1 while the health probe reaches the store), ``cargohold_slow_rpcs_total``
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ..errors import InvalidArgumentError
from .calls import Call

__all__ = ["Metrics", "parse_metrics_address"]

_RPC_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_DRIVER_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_PART_UPLOAD = "upload_part"


def parse_metrics_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidArgumentError(f"metrics address must be HOST:PORT, got {value!r}")
    return host, int(port)


class Metrics:
    """The metric families, and the hooks that feed them (an RpcObserver, a DriverObserver)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        rpc = ["service", "method"]
        self.rpc_handled = Counter(
            "cargohold_rpc_handled", "RPCs finished, by status code.", [*rpc, "code"], registry=r
        )
        self.rpc_duration = Histogram(
            "cargohold_rpc_duration_seconds",
            "Time from an RPC's start to its status.",
            rpc,
            buckets=_RPC_BUCKETS,
            registry=r,
        )
        self.rpc_in_flight = Gauge("cargohold_rpc_in_flight", "RPCs running.", rpc, registry=r)
        self.received_bytes = Counter(
            "cargohold_rpc_received_bytes", "Bytes of request messages.", rpc, registry=r
        )
        self.sent_bytes = Counter(
            "cargohold_rpc_sent_bytes", "Bytes of response messages.", rpc, registry=r
        )
        self.open_writers = Gauge(
            "cargohold_open_writers", "Write streams holding a writer open.", registry=r
        )
        self.part_uploads = Gauge(
            "cargohold_part_uploads_in_flight",
            "Part uploads sent and not yet answered.",
            registry=r,
        )
        self.driver_requests = Counter(
            "cargohold_driver_requests",
            "Requests to the storage service, by operation and outcome.",
            ["operation", "outcome"],
            registry=r,
        )
        self.driver_duration = Histogram(
            "cargohold_driver_request_duration_seconds",
            "Time each storage request took.",
            ["operation"],
            buckets=_DRIVER_BUCKETS,
            registry=r,
        )
        self.store_up = Gauge(
            "cargohold_store_up", "1 while the health probe reaches the store.", registry=r
        )
        self.slow_rpcs = Counter(
            "cargohold_slow_rpcs", "RPCs the watchdog logged as slow.", registry=r
        )
        self._http: WSGIServer | None = None
        self._http_thread: threading.Thread | None = None

    # -- HTTP -------------------------------------------------------------------------------

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port`` (port 0 picks one); return the port."""
        self._http, self._http_thread = start_http_server(port, host, registry=self.registry)
        return int(self._http.server_port)

    def close(self) -> None:
        """Stop the HTTP endpoint (bounded: it only stops the accept loop)."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    # -- RpcObserver ------------------------------------------------------------------------

    def rpc_started(self, call: Call) -> None:
        """Count the call as in flight."""
        self.rpc_in_flight.labels(call.service, call.method).inc()

    def rpc_finished(self, call: Call, code: grpc.StatusCode, seconds: float) -> None:
        """Record the call's code and duration."""
        self.rpc_in_flight.labels(call.service, call.method).dec()
        self.rpc_handled.labels(call.service, call.method, code.name).inc()
        self.rpc_duration.labels(call.service, call.method).observe(seconds)

    def received(self, service: str, method: str, size: int) -> None:
        """Count a request message's bytes."""
        self.received_bytes.labels(service, method).inc(size)

    def sent(self, service: str, method: str, size: int) -> None:
        """Count a response message's bytes."""
        self.sent_bytes.labels(service, method).inc(size)

    def writer_opened(self, call: Call) -> None:
        """One more open writer."""
        self.open_writers.inc()

    def writer_closed(self, call: Call) -> None:
        """One open writer less."""
        self.open_writers.dec()

    # -- DriverObserver ---------------------------------------------------------------------

    def started(self, operation: str) -> None:
        """A driver request is being sent."""
        if operation == _PART_UPLOAD:
            self.part_uploads.inc()

    def finished(self, operation: str, outcome: str, seconds: float) -> None:
        """A driver request ended."""
        if operation == _PART_UPLOAD:
            self.part_uploads.dec()
        self.driver_requests.labels(operation, outcome).inc()
        self.driver_duration.labels(operation).observe(seconds)

    # -- health and watchdog ----------------------------------------------------------------

    def store_reachable(self, ok: bool) -> None:
        """The health probe's verdict."""
        self.store_up.set(1 if ok else 0)

    def slow_rpc(self, call: Call) -> None:
        """The watchdog logged ``call`` as slow."""
        self.slow_rpcs.inc()
