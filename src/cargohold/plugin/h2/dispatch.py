"""Running one call's handler on a pool thread: requests in, responses and status out.

Handlers are grpcio ``RpcMethodHandler`` objects (what ``add_generic_rpc_handlers`` and the
interceptors produce), so the servicer, its request parsing (registration.py) and the call
tracker (calls.py) are the grpcio engine's own. A unary response goes to the loop in one hop
with its status. The content service's finite server-streaming calls (``Read``, ``List``, in
``HOLD_BACK``) hold back one message so that the last one travels with the status (a 32 KiB Read
is one hop); every other response goes out at once: a stream such as Health.Watch sends its
first message and then waits, and containerd's Write waits for each reply.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from .context import Aborted, H2Context
from .grpcwire import prefix
from .stream import END, Stream

__all__ = ["HOLD_BACK", "answer_now", "run_call"]

_log = logging.getLogger("cargohold.plugin.h2")

_INTERNAL = int(grpc.StatusCode.INTERNAL.value[0])
_UNKNOWN = int(grpc.StatusCode.UNKNOWN.value[0])
_UNIMPLEMENTED = int(grpc.StatusCode.UNIMPLEMENTED.value[0])


_CONTENT = "/containerd.services.content.v1.Content/"
HOLD_BACK = frozenset({_CONTENT + "Read", _CONTENT + "List"})
"""Server-streaming methods whose handler produces its messages without waiting and then
ends: holding one message back costs no latency there. Any other stream may produce a message
and then block (Health.Watch does), so its messages go out as they come."""


class _BadRequest(Exception):
    pass


def _requests(stream: Stream, deserialize: Callable[[bytes], Any] | None) -> Iterator[Any]:
    while True:
        raw = stream.next_request()
        if raw is None:
            return
        yield raw if deserialize is None else deserialize(raw)


def _one_request(stream: Stream, deserialize: Callable[[bytes], Any] | None) -> Any:
    raw = stream.next_request()
    if raw is None or stream.next_request() is not None:
        raise _BadRequest("a unary call needs exactly one request message")
    return raw if deserialize is None else deserialize(raw)


def _framed(serialize: Callable[[Any], bytes] | None, response: Any) -> bytes:
    raw = response if serialize is None else serialize(response)
    return prefix(len(raw)) + raw


def answer_now(stream: Stream, answer: Callable[[bytes], bytes | None]) -> bytes | None:
    """The framed response ``answer`` (a fast path, see ``H2Server.add_fast_path``) gives to
    a unary-request call whose request has fully arrived, or None with the call left as it
    was, for its handler. Runs on the loop."""
    if stream.handler.request_streaming:
        return None
    queued: list[object] = []
    while True:
        try:
            queued.append(stream.requests.get_nowait())
        except queue.Empty:
            break
    response = None
    first = queued[0] if queued else None
    if len(queued) == 2 and queued[1] is END and isinstance(first, tuple):
        try:
            response = answer(first[0])
        except Exception:
            _log.exception("the fast path of %s failed; its handler runs instead", stream.path)
    if response is None:
        for item in queued:
            stream.requests.put(item)
        return None
    return prefix(len(response)) + response


def run_call(stream: Stream) -> None:
    """Run ``stream``'s handler to its end and send its status (a pool thread's job). A call
    that ended while it waited for a thread (deadline, reset, shutdown) runs no handler."""
    if not stream.active:
        stream.run_callbacks()
        return
    handler = stream.handler
    context = H2Context(stream)
    try:
        try:
            if handler.request_streaming:
                request = _requests(stream, handler.request_deserializer)
            else:
                request = _one_request(stream, handler.request_deserializer)
            serialize = handler.response_serializer
            if not handler.response_streaming:
                behavior = handler.unary_unary or handler.stream_unary
                response = behavior(request, context)
                if response is None or context.code() not in (None, grpc.StatusCode.OK):
                    stream.send(b"", _ended(context, response is None))
                else:
                    stream.send(_framed(serialize, response), context.status())
                return
            behavior = handler.unary_stream or handler.stream_stream
            responses = behavior(request, context)
            held_back = not handler.request_streaming and stream.path in HOLD_BACK
            _stream_responses(stream, responses, serialize, held_back=held_back, context=context)
        except Aborted:
            stream.send(b"", context.status())
        except grpc.RpcError:  # the request stream ended early: the call is over already
            stream.send(b"", (int(grpc.StatusCode.CANCELLED.value[0]), "cancelled"))
        except _BadRequest as exc:
            stream.send(b"", (_INTERNAL, str(exc)))
        except Exception as exc:
            _log.exception("the handler of %s failed", stream.path)
            stream.send(b"", (_UNKNOWN, f"Exception calling application: {exc}"))
    finally:
        stream.run_callbacks()


def _ended(context: H2Context, missing: bool) -> tuple[int, str]:
    code, message = context.status()
    if code == 0 and missing:
        return _INTERNAL, "the handler returned no response"
    return code, message


def _stream_responses(
    stream: Stream,
    responses: Iterator[Any],
    serialize: Callable[[Any], bytes] | None,
    *,
    held_back: bool,
    context: H2Context,
) -> None:
    held = b""
    try:
        for response in responses:
            data = _framed(serialize, response)
            if held_back:
                if held:
                    stream.send(held)
                held = data
            else:
                stream.send(data)
            if not stream.active:
                return  # the client went away: closing the generator runs its clean-up
    except Aborted:
        stream.send(held, context.status())
        return
    finally:
        close = getattr(responses, "close", None)
        if close is not None:
            close()
    stream.send(held, context.status())
