"""A gRPC server interceptor that tracks every RPC: which thread runs it and what it is doing.

For each call it records the thread that runs the handler (grpc's sync server runs a handler
and drains its response iterator on one pool thread), the ref or digest of the first request,
and whether the handler is *busy* (running server code) or waiting for the client (reading the
next request, or handing a response to gRPC to send). The slow-RPC watchdog reads these records
to find handlers that are stuck; shutdown reads them to report handlers still running. When
metrics are on, the same wrappers count messages, bytes and outcomes.

Nothing here takes a lock on the message path except ``CallTracker``'s registry lock, held
only to add or remove one entry.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

__all__ = ["Call", "CallTracker", "RpcObserver"]


class RpcObserver(Protocol):
    """Receives what the tracker sees (the metrics, when they are on)."""

    def rpc_started(self, call: Call) -> None:
        """The handler of ``call`` is about to run."""

    def rpc_finished(self, call: Call, code: grpc.StatusCode, seconds: float) -> None:
        """The RPC ended (as the client sees it) with ``code`` after ``seconds``."""

    def received(self, service: str, method: str, size: int) -> None:
        """A request message of ``size`` bytes (as on the wire) arrived."""

    def sent(self, service: str, method: str, size: int) -> None:
        """A response message of ``size`` bytes (as on the wire) is being sent."""

    def writer_opened(self, call: Call) -> None:
        """A Write stream got its first message (and so holds a writer)."""

    def writer_closed(self, call: Call) -> None:
        """That Write stream's handler has returned (its writer is closed)."""


@dataclass
class Call:
    """One RPC in progress. Fields are written by the RPC's thread and read by others."""

    id: int
    service: str
    method: str
    thread: int
    started: float
    subject: str = ""
    busy_since: float | None = None
    """Since when the handler has been running server code; None while it waits on the client."""
    reported: bool = False
    done: bool = False
    """The handler has returned or raised (its thread is free)."""
    failed: bool = False
    """The handler raised an error that was not a status set with ``context.abort``."""
    writer_open: bool = False


def _split(full: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` -> (``pkg.Service``, ``Method``)."""
    service, _, method = full.lstrip("/").rpartition("/")
    return service, method


def _subject(message: object) -> str:
    for name in ("ref", "digest"):
        value = getattr(message, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


class CallTracker(grpc.ServerInterceptor):  # type: ignore[misc]
    """Wraps every handler; keeps the calls whose handlers are running."""

    def __init__(self, observer: RpcObserver | None = None) -> None:
        self._observer = observer
        self._calls: dict[int, Call] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def running(self) -> list[Call]:
        """A snapshot of the calls whose handlers have not returned."""
        with self._lock:
            return list(self._calls.values())

    # -- bookkeeping ------------------------------------------------------------------------

    def _begin(self, service: str, method: str, context: grpc.ServicerContext) -> Call:
        now = time.monotonic()
        call = Call(next(self._ids), service, method, threading.get_ident(), now, busy_since=now)
        with self._lock:
            self._calls[call.id] = call
        observer = self._observer
        if observer is not None:
            observer.rpc_started(call)

            def on_termination() -> None:
                observer.rpc_finished(call, _code(call, context), time.monotonic() - call.started)

            if not context.add_callback(on_termination):
                on_termination()  # the RPC has already ended (cancelled before it started)
        return call

    def answered(self, service: str, method: str, received: int, sent: int, since: float) -> None:
        """A call answered without a handler (the h2 engine's fast path; see
        ``H2Server.add_fast_path``), started at ``since`` (``time.monotonic``) and ended OK
        with one message each way: the observer sees it as it sees any other call."""
        observer = self._observer
        if observer is None:
            return
        call = Call(next(self._ids), service, method, threading.get_ident(), since)
        call.done = True
        observer.rpc_started(call)
        observer.received(service, method, received)
        observer.sent(service, method, sent)
        observer.rpc_finished(call, grpc.StatusCode.OK, time.monotonic() - since)

    def _end(self, call: Call, failed: bool) -> None:
        call.failed = failed
        call.done = True
        call.busy_since = None
        with self._lock:
            self._calls.pop(call.id, None)
        if call.writer_open and self._observer is not None:
            self._observer.writer_closed(call)

    def _requests(self, call: Call, requests: Iterator[Any]) -> Iterator[Any]:
        observer = self._observer
        for request in _waiting(call, requests):
            if not call.subject:
                call.subject = _subject(request)
                if observer is not None and call.method == "Write" and call.subject:
                    call.writer_open = True
                    observer.writer_opened(call)
            yield request

    def _responses(self, call: Call, responses: Iterator[Any]) -> Iterator[Any]:
        failed = True
        try:
            for response in responses:
                call.busy_since = None  # gRPC sends it (and may wait for the client's window)
                yield response
                call.busy_since = time.monotonic()
            failed = False
        except GeneratorExit:
            failed = False
            raise
        finally:
            self._end(call, failed and not call.done)

    # -- the interceptor -------------------------------------------------------------------

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        # grpcio asks for the handler on its polling thread, once per RPC: the wrapped handler
        # depends on the method alone, so it is built once per method (a race builds it twice,
        # harmlessly).
        full = handler_call_details.method
        wrapped = self._wrapped.get(full)
        if wrapped is not None:
            return wrapped
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        wrapped = self._wrap(handler, full)
        self._wrapped[full] = wrapped
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, full: str) -> grpc.RpcMethodHandler:
        service, method = _split(full)
        streaming_in, streaming_out = handler.request_streaming, handler.response_streaming
        inner = _behavior(handler)

        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            call = self._begin(service, method, context)
            if streaming_in:
                request = self._requests(call, request)
            else:
                call.subject = _subject(request)
            if streaming_out:
                try:
                    responses = inner(request, context)
                except BaseException:
                    self._end(call, failed=True)
                    raise
                return self._responses(call, responses)
            failed = True
            try:
                response = inner(request, context)
                failed = False
            finally:
                self._end(call, failed)
            return response

        deserialize, serialize = handler.request_deserializer, handler.response_serializer
        observer = self._observer
        if observer is not None:
            # Sizes from the wire bytes: free, where ByteSize() would walk a 1 MiB message.
            deserialize = _counting_in(
                deserialize, functools.partial(observer.received, service, method)
            )
            serialize = _counting_out(serialize, functools.partial(observer.sent, service, method))
        return _rebuild(handler, behavior, deserialize, serialize)


def _waiting(call: Call, requests: Iterator[Any]) -> Iterator[Any]:
    """Yield requests, marking the call idle (waiting on the client) while each is awaited."""
    iterator = iter(requests)
    while True:
        call.busy_since = None
        try:
            request = next(iterator)
        except StopIteration:
            call.busy_since = time.monotonic()
            return
        except BaseException:  # the client went away: the handler now unwinds (server code)
            call.busy_since = time.monotonic()
            raise
        call.busy_since = time.monotonic()
        yield request


def _code(call: Call, context: grpc.ServicerContext) -> grpc.StatusCode:
    """The status the client got, as well as the server can tell."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if call.failed:
        return grpc.StatusCode.UNKNOWN
    if call.done:
        return grpc.StatusCode.OK
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


def _behavior(handler: grpc.RpcMethodHandler) -> Callable[[Any, grpc.ServicerContext], Any]:
    fn = handler.unary_unary or handler.unary_stream or handler.stream_unary
    fn = fn or handler.stream_stream
    assert fn is not None
    return fn  # type: ignore[no-any-return]


def _counting_in(
    deserialize: Callable[[bytes], Any] | None, count: Callable[[int], None]
) -> Callable[[bytes], Any]:
    def counted(raw: bytes) -> Any:
        count(len(raw))
        return raw if deserialize is None else deserialize(raw)

    return counted


def _counting_out(
    serialize: Callable[[Any], bytes] | None, count: Callable[[int], None]
) -> Callable[[Any], bytes]:
    def counted(message: Any) -> bytes:
        raw = message if serialize is None else serialize(message)
        count(len(raw))
        return raw

    return counted


def _rebuild(
    handler: grpc.RpcMethodHandler,
    behavior: Callable[[Any, grpc.ServicerContext], Any],
    deserialize: Callable[[bytes], Any] | None,
    serialize: Callable[[Any], bytes] | None,
) -> grpc.RpcMethodHandler:
    args = (behavior, deserialize, serialize)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(*args)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(*args)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(*args)
    return grpc.unary_unary_rpc_method_handler(*args)
