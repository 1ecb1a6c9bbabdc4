"""The h2 engine's server: listening sockets, the event loop thread, handler lookup, the pool.

It offers the slice of ``grpc.Server`` that ``ContentServer`` uses (``add_generic_rpc_handlers``,
``add_registered_method_handlers``, ``add_insecure_port``, ``start``, ``stop``), so the content
servicer, the health servicer and the call-tracking interceptor are registered on it exactly as
on grpcio's server.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any, NamedTuple

from .connection import Connection
from .dispatch import run_call
from .stream import Metadatum, Stream

__all__ = ["H2Server"]

_log = logging.getLogger("cargohold.plugin.h2")

LOOP_STOP_SECONDS = 1.0
"""After the grace period: how long closing connections and stopping the loop may take."""


class _CallDetails(NamedTuple):
    """``grpc.HandlerCallDetails`` for handler lookup."""

    method: str
    invocation_metadata: tuple[Metadatum, ...]


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed (it is optional), else asyncio's."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class H2Server:
    """Serves registered gRPC handlers over the hand-written HTTP/2 layer."""

    def __init__(self, *, workers: int, interceptors: Sequence[Any] = (), max_message: int) -> None:
        self.max_message = max_message
        self._interceptors = tuple(interceptors)
        self._generic: list[Any] = []
        self._handlers: dict[str, Any] = {}
        self.fast_paths: dict[str, Callable[[bytes], bytes | None]] = {}
        self._pool = futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="cargohold-h2"
        )
        self._sockets: list[socket.socket] = []
        self._listeners: list[asyncio.AbstractServer] = []
        self.connections: set[Connection] = set()
        self.draining = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._idle: asyncio.Event | None = None

    # -- the grpc.Server surface ContentServer uses ------------------------------------------

    def add_generic_rpc_handlers(self, handlers: Sequence[Any]) -> None:
        self._generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        """Nothing to do: the generic handlers registered with them already serve them."""

    def add_fast_path(self, path: str, answer: Callable[[bytes], bytes | None]) -> None:
        """Let ``answer`` reply to calls of ``path`` (a unary-request method) on the event
        loop: it gets the request message and returns the one response message, to be sent
        with status OK, or ``None`` to leave the call to its handler on the pool. It must
        never block or wait (the loop serves every connection), and answer only what the
        handler would answer; it sees no interceptor, so it reports the call itself."""
        self.fast_paths[path] = answer

    def add_insecure_port(self, address: str) -> int:
        """Bind now (so a unix socket is created under the caller's umask); the port for TCP."""
        if address.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(address[len("unix://") :])
                sock.listen(128)
            except BaseException:
                sock.close()
                raise
            self._sockets.append(sock)
            return 1
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        family, kind, proto, _, where = socket.getaddrinfo(
            host, int(port), type=socket.SOCK_STREAM
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(where)
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        self._sockets.append(sock)
        bound: int = sock.getsockname()[1]
        return bound

    def start(self) -> None:
        """Run the event loop on a thread of its own and accept connections."""
        loop = self._loop = _new_loop()
        ready = threading.Event()
        failed: list[BaseException] = []

        async def listen() -> None:
            try:
                for sock in self._sockets:

                    def factory() -> Connection:
                        return Connection(self, loop)

                    if sock.family == socket.AF_UNIX:
                        server = await loop.create_unix_server(factory, sock=sock)
                    else:
                        server = await loop.create_server(factory, sock=sock)
                    self._listeners.append(server)
            except BaseException as exc:
                failed.append(exc)
            finally:
                ready.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.create_task(listen())
            try:
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.close()
                self._stopped.set()

        self._thread = threading.Thread(target=run, name="cargohold-h2-loop", daemon=True)
        self._thread.start()
        if not ready.wait(10.0):
            raise RuntimeError("the h2 engine's event loop did not start")
        if failed:
            self.stop(0).wait(LOOP_STOP_SECONDS)
            raise failed[0]

    def stop(self, grace: float | None) -> threading.Event:
        """GOAWAY to every connection; calls get ``grace`` seconds, then are cancelled and the
        connections closed. The event is set once the loop has stopped (within about
        ``grace + LOOP_STOP_SECONDS``)."""
        loop = self._loop
        if loop is None or self._stopped.is_set():
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._stopped.set()
            return self._stopped
        with contextlib.suppress(RuntimeError):  # the loop may have stopped already
            loop.call_soon_threadsafe(lambda: loop.create_task(self._shutdown(grace or 0.0)))
        return self._stopped

    async def _shutdown(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        self.draining = True
        for server in self._listeners:
            server.close()
        self._idle = asyncio.Event()
        for conn in list(self.connections):
            conn.drain()
        self.connection_gone()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        for conn in list(self.connections):
            conn.abort_streams()
        self._pool.shutdown(wait=False, cancel_futures=True)
        # Let the transports flush their last frames, then stop.
        deadline = loop.time() + LOOP_STOP_SECONDS / 2
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        loop.stop()

    # -- used by connections ------------------------------------------------------------------

    def connection_gone(self) -> None:
        if self._idle is not None and not self.connections:
            self._idle.set()

    def lookup(self, path: str) -> Any:
        """The handler for ``/pkg.Service/Method``, through the interceptors; None if none."""
        try:
            return self._handlers[path]
        except KeyError:
            pass
        details = _CallDetails(path, ())

        def resolve(call: Any) -> Any:
            for generic in self._generic:
                handler = generic.service(call)
                if handler is not None:
                    return handler
            return None

        continuation = resolve
        for interceptor in reversed(self._interceptors):
            continuation = _chain(interceptor, continuation)
        handler = continuation(details)
        if len(self._handlers) < 1024:  # unknown paths are cached too, up to a bound
            self._handlers[path] = handler
        return handler

    def submit(self, stream: Stream) -> bool:
        """Run the call's handler on the pool; False if the pool no longer takes work."""
        try:
            self._pool.submit(run_call, stream)
        except RuntimeError:
            return False
        return True


def _chain(interceptor: Any, continuation: Any) -> Any:
    def call(details: Any) -> Any:
        return interceptor.intercept_service(continuation, details)

    return call
