"""The gRPC server behind ``cargohold serve``: listening address, socket file, lifecycle.

A unix socket is created with mode 0660 (never briefly wider); an existing file at that path
is replaced only if it is a socket nobody answers on. TCP is accepted on loopback only, for
tests. ``engine="h2"`` serves the same servicers over the HTTP/2 layer in h2/ instead of
grpcio's server (cheaper per RPC; what it leaves out is listed in h2/__init__.py). Besides
containerd's content service the socket serves ``grpc.health.v1`` (health.py);
an interceptor tracks every RPC (calls.py) for the slow-RPC watchdog (watchdog.py) and, when
asked for, Prometheus metrics (metrics.py).

``stop()`` always returns within ``grace + close_timeout`` (plus about two seconds): in-flight
RPCs get ``grace`` seconds, then gRPC cancels them; open writers then get ``close_timeout``
seconds to make their state durable. A writer stuck in a driver call is logged with its ref and
the stacks of the threads working for it, and left behind: its ingestion resumes from its last
checkpoint. Threads left behind keep the interpreter from exiting (pool threads are joined at
exit), which is why ``cargohold serve`` ends with ``os._exit`` (see command.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

from ..drivers.wrapper import MeteredDriver
from ..errors import InvalidArgumentError, UnavailableError
from ..store import Store as ContentStore
from .calls import CallTracker
from .gen import content_pb2 as pb
from .health import HealthReporter, store_probe
from .ownership import Holdings
from .registration import SERVICE, add_content_service
from .servicer import ContentServicer
from .stacks import format_stack, thread_name, writer_threads
from .watchdog import SlowRpcWatchdog

if TYPE_CHECKING:
    from .metrics import Metrics

__all__ = ["ENGINES", "Address", "ContentServer", "Operations", "parse_address", "run_bounded"]

_log = logging.getLogger("cargohold.plugin")

ENGINES = ("h2", "grpcio")
"""The hand-written HTTP/2 layer in h2/ (the default), or grpcio's server."""
DEFAULT_ENGINE = ENGINES[0]
MAX_MESSAGE = 64 * 1024 * 1024
"""containerd's proxy sends WRITE chunks of up to 8 MiB; gRPC's default limit is 4 MiB."""
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "[::1]"})


@dataclass(frozen=True)
class Address:
    """Where to listen: a unix socket path, or a loopback ``host:port``."""

    kind: str  # "unix" or "tcp"
    target: str

    def __str__(self) -> str:
        return f"{self.kind}://{self.target}"


def parse_address(value: str) -> Address:
    """``unix:///path/to.sock``, a bare absolute path, or ``tcp://127.0.0.1:PORT``."""
    if value.startswith("unix://"):
        path = value[len("unix://") :]
    elif value.startswith("/"):
        path = value
    elif value.startswith("tcp://"):
        hostport = value[len("tcp://") :]
        host, sep, port = hostport.rpartition(":")
        if not sep or host not in _LOOPBACK or not port.isdigit():
            raise InvalidArgumentError(
                f"tcp addresses must be loopback host:port (tests only), got {value!r}"
            )
        return Address("tcp", hostport)
    else:
        raise InvalidArgumentError(
            f"address must be unix:///path or tcp://127.0.0.1:PORT, got {value!r}"
        )
    if not path.startswith("/"):
        raise InvalidArgumentError(f"unix socket path must be absolute, got {path!r}")
    return Address("unix", path)


def _clear_stale_socket(path: Path) -> None:
    """Remove ``path`` if it is a socket with no server behind it; refuse anything else."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise InvalidArgumentError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError:
        _log.info("replacing stale socket", extra={"path": str(path)})
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise UnavailableError(f"another server is already listening on {path}")


@dataclass(frozen=True)
class Operations:
    """How the server reports on itself: health probing, slow-RPC log, metrics endpoint."""

    health_interval: float = 10.0
    """Seconds between store probes; 0 turns probing off (always SERVING)."""
    health_timeout: float = 5.0
    """A probe not answered within this many seconds counts as a failure."""
    slow_rpc_seconds: float = 120.0
    """Log the stack of an RPC busy for this long without progress; 0 turns it off."""
    metrics_address: tuple[str, int] | None = None
    """Serve Prometheus metrics on (host, port), if set."""
    write_behind: bool = True
    """Answer a WRITE before its bytes are applied (see ``servicer._WriteSession``)."""


def run_bounded(fn: Callable[[], object], timeout: float, name: str) -> bool:
    """Run ``fn`` on a daemon thread and wait at most ``timeout`` s; True if it returned."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run, name=f"cargohold-{name}", daemon=True)
    thread.start()
    thread.join(max(timeout, 0.0))
    if failed:
        _log.error(f"{name} failed", exc_info=failed[0])
    return not thread.is_alive()


class ContentServer:
    """A started-on-demand gRPC server for one store and node."""

    def __init__(
        self,
        store: ContentStore,
        node_id: str,
        address: Address,
        *,
        workers: int = 32,
        operations: Operations | None = None,
        engine: str = DEFAULT_ENGINE,
    ) -> None:
        if engine not in ENGINES:
            raise InvalidArgumentError(
                f"engine must be one of {', '.join(ENGINES)}, got {engine!r}"
            )
        ops = operations or Operations()
        self.engine = engine
        self.address = address
        self.holdings = Holdings(store, node_id)
        self._write_pool = futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="cargohold-write"
        )
        self.servicer = ContentServicer(
            store, self.holdings, self._write_pool if ops.write_behind else None
        )
        self.metrics: Metrics | None = None
        if ops.metrics_address is not None:
            from .metrics import Metrics  # prometheus_client only when metrics are asked for

            self.metrics = Metrics()
        self._metrics_address = ops.metrics_address
        self.metrics_port: int | None = None
        self.tracker = CallTracker(self.metrics)
        self.health = HealthReporter(
            store_probe(store),
            interval=ops.health_interval,
            timeout=ops.health_timeout,
            on_result=self.metrics.store_reachable if self.metrics else None,
        )
        self._watchdog = None
        if ops.slow_rpc_seconds > 0:
            self._watchdog = SlowRpcWatchdog(
                self.tracker,
                ops.slow_rpc_seconds,
                on_slow=self.metrics.slow_rpc if self.metrics else None,
            )
        self._driver = store.driver if isinstance(store.driver, MeteredDriver) else None
        self._server: Any
        if engine == "h2":
            from .h2 import H2Server  # the same registrations, served by h2/ (see its docs)

            self._server = H2Server(
                workers=workers, interceptors=[self.tracker], max_message=MAX_MESSAGE
            )
            self._server.add_fast_path(f"/{SERVICE}/Read", self._read_now)
        else:
            self._server = self._grpc_server(workers)
        add_content_service(self.servicer, self._server)
        self.health.add_to_server(self._server)
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._stopping = False
        self._clean = True
        self.port: int | None = None

    def _read_now(self, raw: bytes) -> bytes | None:
        """The h2 engine's fast path for Read: the answer when the read cache already holds
        it (``ContentServicer.read_now``), else None (the Read handler runs)."""
        since = time.monotonic()
        try:
            request = pb.ReadContentRequest.FromString(raw)
        except DecodeError:
            return None  # the handler answers INVALID_ARGUMENT
        response = self.servicer.read_now(request)
        if response is None:
            return None
        out: bytes = response.SerializeToString()
        self.tracker.answered(SERVICE, "Read", len(raw), len(out), since)
        return out

    def _grpc_server(self, workers: int) -> Any:
        return grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cargohold-rpc"),
            interceptors=[self.tracker],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                # containerd writes in lock step (one WRITE, then wait for its reply) with
                # 1 MiB chunks: a stream window that holds a whole chunk saves the HTTP/2
                # WINDOW_UPDATE round trips inside every chunk.
                ("grpc.http2.lookahead_bytes", 8 * 1024 * 1024),
                ("grpc.optimization_target", "throughput"),
            ],
        )

    def start(self) -> None:
        """Check the address, serve metrics, probe the store once, then bind and serve."""
        path = Path(self.address.target)
        if self.address.kind == "unix":
            path.parent.mkdir(parents=True, exist_ok=True)
            _clear_stale_socket(path)  # refuse early, before any probing
        try:
            self._start_operations()
            if self.address.kind == "unix":
                _clear_stale_socket(path)
                old = os.umask(0o117)  # the socket is born 0660
                try:
                    self._server.add_insecure_port(f"unix://{path}")
                    self._server.start()
                finally:
                    os.umask(old)
                os.chmod(path, 0o660)
            else:
                self.port = self._server.add_insecure_port(self.address.target)
                if not self.port:
                    raise UnavailableError(f"cannot listen on {self.address}")
                self._server.start()
        except BaseException:
            self._stop_operations()
            raise
        if self._watchdog is not None:
            self._watchdog.start()
        _log.info(
            "serving containerd content service",
            extra={"address": str(self.address), "node_id": self.holdings.node_id},
        )

    def _start_operations(self) -> None:
        if self.metrics is not None and self._metrics_address is not None:
            self.metrics_port = self.metrics.serve(*self._metrics_address)
            if self._driver is not None:
                self._driver.observer = self.metrics
            _log.info(
                "serving metrics",
                extra={"address": f"{self._metrics_address[0]}:{self.metrics_port}"},
            )
        self.health.start()

    def _stop_operations(self) -> None:
        self.health.stop()
        if self._watchdog is not None:
            self._watchdog.stop()
        if self._driver is not None:
            self._driver.observer = None
        if self.metrics is not None:
            run_bounded(self.metrics.close, 0.1, "metrics-close")  # finishes on its own

    def stop(self, grace: float = 10.0, close_timeout: float = 3.0) -> bool:
        """Stop within ``grace + close_timeout`` (plus ~2 s), whatever the writers are doing.

        Returns True if every RPC ended and every writer closed; False if something was left
        behind (logged with its stack). A second call waits for the first one.
        """
        with self._stop_lock:
            first, self._stopping = not self._stopping, True
        if not first:
            self._stopped.wait(grace + close_timeout + 5)
            return self._clean
        started = time.monotonic()
        _log.info("shutting down", extra={"grace_seconds": grace})
        self.health.stop()
        # gRPC cancels what is still running after `grace`; the event follows shortly.
        if not self._server.stop(grace).wait(grace + 1.0):
            _log.warning("gRPC did not finish its shutdown in time; going on")
        close_by = time.monotonic() + close_timeout
        closed = run_bounded(self.servicer.close_writers, close_timeout, "close-writers")
        if not closed:
            self._report_stuck_writers(close_timeout)
        self._write_pool.shutdown(wait=False)
        # Cancelled handlers unwind (closing their writers) on their own threads: give them
        # what is left of the close timeout, then report any still running.
        while self.tracker.running() and time.monotonic() < close_by:
            time.sleep(0.05)
        stuck = self._report_stuck_rpcs()
        self._stop_operations()
        if self.address.kind == "unix":
            with contextlib.suppress(OSError):
                os.unlink(self.address.target)
        self._clean = closed and not stuck
        _log.info(
            "stopped",
            extra={"seconds": round(time.monotonic() - started, 3), "clean": self._clean},
        )
        self._stopped.set()
        return self._clean

    def _report_stuck_writers(self, waited: float) -> None:
        threads = writer_threads()
        _log.error(
            "writers did not close in time; leaving them (each resumes from its last checkpoint)",
            extra={"waited_seconds": waited, "refs": ",".join(sorted({t.ref for t in threads}))},
        )
        for t in threads:
            _log.error(
                "writer left behind",
                extra={"ref": t.ref, "thread_name": t.name, "stack": t.stack},
            )

    def _report_stuck_rpcs(self) -> bool:
        running = self.tracker.running()
        for call in running:
            _log.error(
                "RPC still running at shutdown; leaving it",
                extra={
                    "rpc": f"{call.service}/{call.method}",
                    "subject": call.subject,
                    "seconds": round(time.monotonic() - call.started, 3),
                    "thread_name": thread_name(call.thread),
                    "stack": format_stack(call.thread),
                },
            )
        return bool(running)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ``stop()`` has finished (or ``timeout``); True if it has."""
        return self._stopped.wait(timeout)
