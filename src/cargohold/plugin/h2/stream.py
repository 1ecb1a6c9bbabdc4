"""One gRPC call's stream, as both sides of the server see it.

The event loop (connection.py) owns the HTTP/2 state: windows, buffered output, whether each
side has ended. The handler runs on a pool thread and touches the stream only through the
methods marked "handler thread" here: it takes request messages from a queue the loop fills,
and hands response bytes to the loop with ``call_soon_threadsafe``. A handler that produces
faster than the peer's windows drain waits (in bounded slices) until the loop has written
its bytes; nothing blocks the loop. ``cond``'s lock is held only to update a counter.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import grpc

from .grpcwire import MessageReader

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["END", "RESET", "Cancelled", "Metadatum", "Stream"]

_log = logging.getLogger("cargohold.plugin.h2")

SEND_BUFFER = 2 * 1024 * 1024
"""A handler waits while more than this many of its response bytes are not yet written."""
WAIT_SLICE = 0.5
"""Every wait of a handler thread re-checks the stream this often (seconds)."""

END = object()
"""Queued after the last request message: the client half-closed."""
RESET = object()
"""Queued when the call ends early (reset by the client, deadline, shutdown, lost peer)."""


class Metadatum(NamedTuple):
    """One request header, as ``invocation_metadata`` returns it (like grpcio's)."""

    key: str
    value: str


class Cancelled(grpc.RpcError):  # type: ignore[misc]
    """Raised to a handler reading requests of a call that has ended early (as grpcio does)."""


class Stream:
    """A call's state shared by the loop and the handler thread."""

    __slots__ = (
        "active",
        "callbacks",
        "cond",
        "conn",
        "deadline",
        "handler",
        "headers_sent",
        "held",
        "local_closed",
        "metadata",
        "out_pending",
        "outbuf",
        "path",
        "queued_wire",
        "reader",
        "recv_window",
        "remote_closed",
        "requests",
        "send_window",
        "sid",
        "status",
        "submitted",
        "timer",
    )

    def __init__(
        self, conn: Connection, sid: int, send_window: int, recv_window: int, limit: int
    ) -> None:
        self.conn = conn
        self.sid = sid
        self.path = ""
        self.metadata: tuple[Metadatum, ...] = ()
        self.deadline: float | None = None
        self.handler: Any = None
        self.active = True
        """False once the call has ended for the client (reset, deadline, finished)."""
        # -- loop only
        self.send_window = send_window
        self.recv_window = recv_window
        self.outbuf: collections.deque[memoryview] = collections.deque()
        self.status: tuple[int, str] | None = None
        self.headers_sent = False
        self.local_closed = False
        self.remote_closed = False
        self.submitted = False
        self.reader = MessageReader(limit)
        self.held = 0
        """Received bytes not yet given back to the peer's window."""
        self.queued_wire = 0
        """Wire bytes of complete request messages the handler has not taken yet."""
        self.timer: asyncio.TimerHandle | None = None
        # -- shared
        self.requests: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.cond = threading.Condition(threading.Lock())
        self.out_pending = 0
        self.callbacks: list[Callable[[], None]] | None = []

    # -- handler thread ---------------------------------------------------------------------

    def next_request(self) -> bytes | None:
        """The next request message; None after the client half-closed; Cancelled if the
        call ended early. Waits in bounded slices, re-checking the call."""
        while True:
            try:
                item = self.requests.get(timeout=WAIT_SLICE)
            except queue.Empty:
                if not self.active:
                    raise Cancelled() from None
                continue
            if item is RESET or not self.active:  # an end wins over messages queued before it
                self.requests.put(RESET)  # every later read fails the same way
                raise Cancelled()
            if item is END:
                self.requests.put(END)
                return None
            assert isinstance(item, tuple)
            raw, wire = item
            if not self.remote_closed:  # else no window is owed (a stale False costs a hop)
                try:
                    self.conn.loop.call_soon_threadsafe(self.conn.consumed, self, wire)
                except RuntimeError:  # the loop has stopped: the call is over
                    raise Cancelled() from None
            return raw  # type: ignore[no-any-return]

    def send(self, data: bytes, status: tuple[int, str] | None = None) -> None:
        """Hand response bytes (and, with ``status``, the end of the call) to the loop; wait
        while too much of this call's output is still unwritten."""
        if not self.active:
            return
        with self.cond:
            self.out_pending += len(data)
        try:
            self.conn.loop.call_soon_threadsafe(self.conn.enqueue, self, data, status)
        except RuntimeError:  # the loop has stopped (shutdown): nobody to send to
            self.active = False
            return
        if status is not None:
            return
        with self.cond:
            while self.out_pending > SEND_BUFFER and self.active:
                self.cond.wait(WAIT_SLICE)

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """Run ``callback`` when the call ends; False if it has already ended."""
        with self.cond:
            if self.callbacks is None:
                return False
            self.callbacks.append(callback)
            return True

    def time_remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return max(self.deadline - time.monotonic(), 0.0)

    # -- either side --------------------------------------------------------------------------

    def wrote(self, n: int) -> None:
        """The loop has written ``n`` more of the handler's bytes (or dropped them)."""
        with self.cond:
            self.out_pending = max(self.out_pending - n, 0)
            self.cond.notify_all()

    def run_callbacks(self) -> None:
        """Run the termination callbacks, once."""
        with self.cond:
            callbacks, self.callbacks = self.callbacks, None
            self.cond.notify_all()
        for callback in callbacks or ():
            try:
                callback()
            except Exception:
                _log.exception("an RPC termination callback failed")
