"""The gRPC server behind ``cargohold serve``: listening address, socket file, lifecycle.

A unix socket is created with mode 0660 (never briefly wider); an existing file at that path
is replaced only if it is a socket nobody answers on. TCP is accepted on loopback only, for
tests. ``stop()`` lets in-flight RPCs finish for a grace period, then closes any writer still
open so its ingestion stays resumable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc

from ..errors import InvalidArgumentError, UnavailableError
from ..store import Store as ContentStore
from .gen import content_pb2_grpc as pb_grpc
from .ownership import Holdings
from .servicer import ContentServicer

__all__ = ["Address", "ContentServer", "parse_address"]

_log = logging.getLogger("cargohold.plugin")

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


class ContentServer:
    """A started-on-demand gRPC server for one store and node."""

    def __init__(
        self, store: ContentStore, node_id: str, address: Address, *, workers: int = 32
    ) -> None:
        self.address = address
        self.holdings = Holdings(store, node_id)
        self._write_pool = futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="cargohold-write"
        )
        self.servicer = ContentServicer(store, self.holdings, self._write_pool)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cargohold-rpc"),
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
        pb_grpc.add_ContentServicer_to_server(  # type: ignore[no-untyped-call]
            self.servicer, self._server
        )
        self._stopped = threading.Event()
        self.port: int | None = None

    def start(self) -> None:
        """Bind the address and start serving."""
        if self.address.kind == "unix":
            path = Path(self.address.target)
            path.parent.mkdir(parents=True, exist_ok=True)
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
        _log.info(
            "serving containerd content service",
            extra={"address": str(self.address), "node_id": self.holdings.node_id},
        )

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting RPCs, let in-flight ones finish, close leftover writers."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        _log.info("shutting down", extra={"grace_seconds": grace})
        self._server.stop(grace).wait(grace + 5)
        self.servicer.close_writers()
        self._write_pool.shutdown(wait=True)
        if self.address.kind == "unix":
            with contextlib.suppress(OSError):
                os.unlink(self.address.target)
        _log.info("stopped")

    def wait(self) -> None:
        """Block until ``stop()`` has run."""
        self._stopped.wait()
        self._server.wait_for_termination()
