"""One HTTP/2 connection (prior knowledge, no TLS): frames in, frames out, flow control.

Runs on the event loop only. Inbound: the client preface, then frames; request header blocks
(HEADERS + CONTINUATION) are decoded with ``hpack``; DATA is split into gRPC messages queued
for the handler. The stream window is given back only as the handler takes messages (all of
it while the handler has nothing queued, so a message larger than the window still arrives),
so a stream holds at most about one window plus one message; the connection window is given
back as bytes arrive (stream windows already bound what is held). Outbound: response bytes
are cut into DATA frames within the peer's connection and stream windows and its maximum
frame size; a call's trailers follow its last byte. Anything the protocol forbids ends the
connection with GOAWAY.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import hpack

from . import frames as f
from .dispatch import answer_now
from .frames import ErrorCode, ProtocolError, Setting
from .grpcwire import RESPONSE_HEADERS, MessageTooLarge, only_indexed, parse_timeout, trailers
from .stream import END, RESET, Metadatum, Stream

if TYPE_CHECKING:
    from .server import H2Server

__all__ = ["Connection"]

_log = logging.getLogger("cargohold.plugin.h2")

STREAM_WINDOW = 2 * 1024 * 1024
"""Our initial stream window: a whole 1 MiB Write message plus the next one's start."""
CONNECTION_WINDOW = 64 * 1024 * 1024
MAX_STREAMS = 128
MAX_FRAME = 16384
"""We never raise SETTINGS_MAX_FRAME_SIZE: frames we accept are at most this long."""
MAX_HEADER_LIST = 64 * 1024
_MAX_WINDOW = 2**31 - 1
_DEFAULT_WINDOW = 65535
_SKIP_METADATA = frozenset({"te", "content-type", "grpc-timeout", "grpc-encoding"})
_GRPC_UNIMPLEMENTED = 12
_GRPC_INTERNAL = 13
_GRPC_RESOURCE_EXHAUSTED = 8
_GRPC_DEADLINE_EXCEEDED = 4
_GRPC_UNAVAILABLE = 14


_DECODED_KEPT = 64
_INTERNAL_STATUS = (_GRPC_INTERNAL, "internal error")
_OK = (0, "")
"""The status of a call whose end could not be sent as the handler gave it."""


def _trailers(stream: Stream, status: tuple[int, str], max_frame: int) -> bytes:
    """The frames of the trailer block for ``status``; INTERNAL if that cannot be encoded."""
    try:
        block = trailers(*status, headers_sent=stream.headers_sent)
    except Exception:
        _log.exception("the status %r cannot be encoded", status)
        block = trailers(*_INTERNAL_STATUS, headers_sent=stream.headers_sent)
    return f.headers(stream.sid, block, max_frame, end_stream=True)


class Connection(asyncio.Protocol):
    """The server side of one HTTP/2 connection."""

    def __init__(self, server: H2Server, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.peer = ""
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._preface = False
        self._decoder = hpack.Decoder(max_header_list_size=MAX_HEADER_LIST)
        self.streams: dict[int, Stream] = {}
        self._last_sid = 0
        self._send_window = _DEFAULT_WINDOW
        self._peer_initial_window = _DEFAULT_WINDOW
        self._peer_max_frame = 16384
        self._recv_window = CONNECTION_WINDOW
        self._recv_unacked = 0
        self._out = bytearray()
        self._blocked: dict[int, Stream] = {}
        self._paused = False
        self._draining = False
        self._closed = False
        self._continuing = 0  # the stream whose header block awaits CONTINUATION
        self._block = bytearray()
        self._block_flags = 0
        self._decoded: dict[bytes, list[tuple[bytes, bytes]]] = {}

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        self.peer = f"ipv4:{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unix:"
        self._out += f.settings(
            {
                Setting.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
                Setting.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                Setting.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
            }
        )
        self._out += f.window_update(0, CONNECTION_WINDOW - _DEFAULT_WINDOW)
        self.server.connections.add(self)
        if self.server.draining:
            self.drain()
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            self._parse(data)
        except ProtocolError as exc:
            self.fail(exc.code, str(exc))
        except hpack.HPACKError as exc:
            self.fail(ErrorCode.COMPRESSION_ERROR, f"header block: {exc}")
        except Exception as exc:  # a bug, or a handler lookup (interceptor) that raised
            _log.exception("handling frames failed", extra={"peer": self.peer})
            if not self._closed:
                self.fail(ErrorCode.INTERNAL_ERROR, f"internal error: {type(exc).__name__}")
        self._flush()

    def pause_writing(self) -> None:
        """The peer is not reading what we write: stop reading its frames too, since those
        (PING, SETTINGS, refused streams) may each call for a reply that would pile up
        unbounded in the transport's buffer."""
        self._paused = True
        if self.transport is not None and not self._closed:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self.transport is not None and not self._closed:
            self.transport.resume_reading()
        self._flush_blocked()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        for stream in list(self.streams.values()):
            self._end_early(stream)
        self.streams.clear()
        self._blocked.clear()
        self.server.connections.discard(self)
        self.server.connection_gone()

    # -- inbound ------------------------------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos = 0
        if not self._preface:
            n = min(len(buf), len(f.PREFACE))
            if bytes(buf[:n]) != f.PREFACE[:n]:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "bad connection preface")
            if n < len(f.PREFACE):
                return
            self._preface = True
            pos = len(f.PREFACE)
        end_of_data = len(buf)
        unpack = f.HEADER.unpack_from
        while end_of_data - pos >= 9:
            hi, lo, ftype, flags, sid = unpack(buf, pos)
            length = (hi << 8) | lo
            if length > MAX_FRAME:
                raise ProtocolError(ErrorCode.FRAME_SIZE_ERROR, f"frame of {length} bytes")
            end = pos + 9 + length
            if end > end_of_data:
                break
            self._frame(ftype, flags, sid & 0x7FFFFFFF, bytes(buf[pos + 9 : end]))
            pos = end
            if self._closed:
                return
        del buf[:pos]

    def _frame(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        if self._continuing and ftype != f.CONTINUATION:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "expected CONTINUATION")
        if ftype == f.DATA:
            self._on_data(flags, sid, payload)
        elif ftype == f.HEADERS:
            self._on_headers(flags, sid, payload)
        elif ftype == f.CONTINUATION:
            if not self._continuing or sid != self._continuing:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "unexpected CONTINUATION")
            self._block += payload
            if len(self._block) > MAX_HEADER_LIST * 2:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "header block too large")
            if flags & f.END_HEADERS:
                self._continuing = 0
                self._on_block(sid, self._block_flags, bytes(self._block))
        elif ftype == f.WINDOW_UPDATE:
            self._on_window_update(sid, f.parse_u32(payload) & 0x7FFFFFFF)
        elif ftype == f.SETTINGS:
            self._on_settings(flags, sid, payload)
        elif ftype == f.PING:
            if sid or len(payload) != 8:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "bad PING")
            if not flags & f.ACK:
                self._out += f.frame(f.PING, f.ACK, 0, payload)
        elif ftype == f.RST_STREAM:
            self._on_rst(sid, f.parse_u32(payload))
        elif ftype == f.PRIORITY:
            if not sid or len(payload) != 5:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "bad PRIORITY")
        elif ftype == f.GOAWAY:
            if sid:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream")
            self._draining = True  # the client opens no more streams here
            self._close_if_idle()
        elif ftype == f.PUSH_PROMISE:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "a client cannot push")
        # Frames of unknown types are ignored (RFC 9113 4.1).

    def _on_headers(self, flags: int, sid: int, payload: bytes) -> None:
        if not sid or not sid & 1:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, f"HEADERS on stream {sid}")
        payload = f.strip_padding(flags, payload)
        if flags & f.PRIORITY_FLAG:
            payload = payload[5:]
        if flags & f.END_HEADERS:
            self._on_block(sid, flags, payload)
            return
        self._continuing = sid
        self._block = bytearray(payload)
        self._block_flags = flags

    def _on_block(self, sid: int, flags: int, block: bytes) -> None:
        # Decoded whatever happens next: the decoder's table must follow the client's.
        headers = self._decode(block)
        stream = self.streams.get(sid)
        if stream is not None:  # trailers from the client: only the end of its stream
            if not flags & f.END_STREAM:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "trailers without END_STREAM")
            self._remote_end(stream)
            return
        if sid <= self._last_sid:
            raise ProtocolError(ErrorCode.STREAM_CLOSED, f"HEADERS on closed stream {sid}")
        self._last_sid = sid
        if self._draining or len(self.streams) >= MAX_STREAMS:
            self._out += f.rst_stream(sid, ErrorCode.REFUSED_STREAM)
            return
        stream = Stream(
            self, sid, self._peer_initial_window, STREAM_WINDOW, self.server.max_message
        )
        metadata: list[Metadatum] = []
        timeout_in = 0.0
        for raw_name, raw_value in headers:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            if name == ":path":
                stream.path = value
            elif name.startswith(":"):
                continue
            elif name == "grpc-timeout":
                timeout = parse_timeout(value)
                if timeout is not None:
                    stream.deadline = time.monotonic() + timeout
                    timeout_in = timeout
            elif name not in _SKIP_METADATA:
                metadata.append(Metadatum(name, value))
        stream.metadata = tuple(metadata)
        self.streams[sid] = stream
        handler = self.server.lookup(stream.path)
        if handler is None:
            stream.remote_closed = bool(flags & f.END_STREAM)
            self._respond_now(stream, _GRPC_UNIMPLEMENTED, f"Method not found: {stream.path}")
            return
        stream.handler = handler
        if stream.deadline is not None:
            stream.timer = self.loop.call_later(timeout_in, self._expire, stream)
        if flags & f.END_STREAM:
            self._remote_end(stream)
        elif handler.request_streaming:
            self._submit(stream)

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """The header list of ``block``. A block made only of indexed fields changes no HPACK
        state, so its list is kept and reused for the same bytes until a block that may
        change the dynamic table arrives (a client repeating a call sends such blocks)."""
        known = self._decoded.get(block)
        if known is not None:
            return known
        headers = [(bytes(k), bytes(v)) for k, v in self._decoder.decode(block, raw=True)]
        if not only_indexed(block):
            self._decoded.clear()
        elif len(self._decoded) < _DECODED_KEPT:
            self._decoded[block] = headers
        return headers

    def _on_data(self, flags: int, sid: int, payload: bytes) -> None:
        if not sid:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0")
        n = len(payload)
        self._recv_window -= n
        if self._recv_window < 0:
            raise ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded")
        self._recv_unacked += n
        if self._recv_unacked >= CONNECTION_WINDOW // 4:
            self._out += f.window_update(0, self._recv_unacked)
            self._recv_window += self._recv_unacked
            self._recv_unacked = 0
        stream = self.streams.get(sid)
        if stream is None:
            if sid > self._last_sid:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, f"DATA on idle stream {sid}")
            return  # a stream that has ended: its bytes are dropped
        if stream.remote_closed:
            raise ProtocolError(ErrorCode.STREAM_CLOSED, f"DATA after END_STREAM on {sid}")
        stream.recv_window -= n
        if stream.recv_window < 0:
            raise ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, f"stream {sid} window exceeded")
        data = f.strip_padding(flags, payload)
        stream.held += n  # padding included: it is given back with the rest
        try:
            messages = stream.reader.feed(data)
        except MessageTooLarge as exc:
            self._fail_stream(stream, _GRPC_RESOURCE_EXHAUSTED, str(exc))
            return
        except ValueError as exc:
            self._fail_stream(stream, _GRPC_INTERNAL, str(exc))
            return
        for message in messages:
            stream.queued_wire += message[1]
            stream.requests.put(message)
        if flags & f.END_STREAM:
            self._remote_end(stream)
        else:
            self._release(stream)

    def _remote_end(self, stream: Stream) -> None:
        stream.remote_closed = True
        if stream.reader.partial:
            self._fail_stream(stream, _GRPC_INTERNAL, "the request ended inside a message")
            return
        stream.requests.put(END)
        if stream.local_closed:
            self._forget(stream)
        elif not stream.submitted:
            answer = self.server.fast_paths.get(stream.path)
            framed = answer_now(stream, answer) if answer is not None else None
            if framed is None:
                self._submit(stream)
                return
            stream.submitted = True
            self._enqueue(stream, framed, _OK)
            stream.run_callbacks()

    def _release(self, stream: Stream) -> None:
        """Give window back for what the handler has taken (all of it while it waits)."""
        if stream.remote_closed or stream.local_closed:
            return
        keep = stream.queued_wire + stream.reader.partial if stream.queued_wire else 0
        credit = stream.held - keep
        if credit >= STREAM_WINDOW // 8 or (credit > 0 and stream.recv_window < STREAM_WINDOW // 2):
            stream.held -= credit
            stream.recv_window += credit
            self._out += f.window_update(stream.sid, credit)

    def consumed(self, stream: Stream, wire: int) -> None:
        """The handler took a message of ``wire`` bytes (a loop callback, guarded like
        ``enqueue``)."""
        try:
            stream.queued_wire -= wire
            self._release(stream)
        except Exception:
            _log.exception("returning window to %s failed", stream.path)
            self.cancel(stream, ErrorCode.INTERNAL_ERROR, _INTERNAL_STATUS)
        self._flush()

    def _on_window_update(self, sid: int, increment: int) -> None:
        if sid == 0:
            if not increment:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self._send_window += increment
            if self._send_window > _MAX_WINDOW:
                raise ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "connection window overflow")
            self._flush_blocked()
            return
        stream = self.streams.get(sid)
        if stream is None:
            if sid > self._last_sid:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, f"WINDOW_UPDATE on idle {sid}")
            return
        if not increment:
            self._fail_stream(
                stream, _GRPC_INTERNAL, "WINDOW_UPDATE of 0", ErrorCode.PROTOCOL_ERROR
            )
            return
        stream.send_window += increment
        if stream.send_window > _MAX_WINDOW:
            self._fail_stream(
                stream, _GRPC_INTERNAL, "window overflow", ErrorCode.FLOW_CONTROL_ERROR
            )
            return
        if stream.outbuf or stream.status is not None:
            self._flush_stream(stream)

    def _on_settings(self, flags: int, sid: int, payload: bytes) -> None:
        if sid:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & f.ACK:
            if payload:
                raise ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ack with a payload")
            return
        for key, value in f.parse_settings(payload):
            if key == Setting.INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    raise ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "initial window too big")
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
                    if stream.send_window > _MAX_WINDOW:  # RFC 9113 6.9.2
                        raise ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "window overflow")
            elif key == Setting.MAX_FRAME_SIZE:
                if not 16384 <= value <= 16777215:
                    raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "bad MAX_FRAME_SIZE")
                self._peer_max_frame = value
            elif key == Setting.ENABLE_PUSH and value > 1:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "bad ENABLE_PUSH")
        self._out += f.frame(f.SETTINGS, f.ACK, 0)
        self._flush_blocked()

    def _on_rst(self, sid: int, code: int) -> None:
        if not sid:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        stream = self.streams.get(sid)
        if stream is None:
            if sid > self._last_sid:
                raise ProtocolError(ErrorCode.PROTOCOL_ERROR, f"RST_STREAM on idle {sid}")
            return
        stream.remote_closed = stream.local_closed = True
        self._end_early(stream)
        self._forget(stream)

    # -- outbound -----------------------------------------------------------------------------

    def enqueue(self, stream: Stream, data: bytes, status: tuple[int, str] | None) -> None:
        """Response bytes from the handler (and, with ``status``, the end of the call). Runs
        as a loop callback, where an exception would only be logged: any failure ends the call
        with INTERNAL instead of leaving its stream open."""
        try:
            self._enqueue(stream, data, status)
        except Exception:
            _log.exception("sending the response of %s failed", stream.path)
            self.cancel(stream, ErrorCode.INTERNAL_ERROR, _INTERNAL_STATUS)

    def _enqueue(self, stream: Stream, data: bytes, status: tuple[int, str] | None) -> None:
        if stream.local_closed or self._closed:
            stream.wrote(len(data))
            return
        if data:
            if not stream.headers_sent:
                self._out += f.frame(f.HEADERS, f.END_HEADERS, stream.sid, RESPONSE_HEADERS)
                stream.headers_sent = True
            stream.outbuf.append(memoryview(data))
        if status is not None:
            stream.status = status
        self._flush_stream(stream)
        self._flush()

    def _flush_stream(self, stream: Stream) -> None:
        chunks = stream.outbuf
        if not self._paused:
            sid, out, header = stream.sid, self._out, f.HEADER.pack
            sent = 0
            while chunks:
                head = chunks[0]
                n = min(len(head), self._peer_max_frame, self._send_window, stream.send_window)
                if n <= 0:
                    break
                out += header(n >> 8, n & 0xFF, f.DATA, 0, sid)
                out += head[:n]
                if n == len(head):
                    chunks.popleft()
                else:
                    chunks[0] = head[n:]
                self._send_window -= n
                stream.send_window -= n
                sent += n
            if sent:
                stream.wrote(sent)
        if chunks or self._paused:
            self._blocked[stream.sid] = stream
            return
        self._blocked.pop(stream.sid, None)
        if stream.status is not None:
            self._out += _trailers(stream, stream.status, self._peer_max_frame)
            self._close_local(stream)

    def _flush_blocked(self) -> None:
        for stream in list(self._blocked.values()):
            if self._send_window <= 0 or self._paused:
                return
            self._flush_stream(stream)

    def _flush(self) -> None:
        if not self._out:
            return
        out, self._out = self._out, bytearray()  # handed over whole: no copy
        if self.transport is not None and not self._closed:
            self.transport.write(out)

    def _respond_now(self, stream: Stream, code: int, message: str) -> None:
        """End a call that no handler runs for, with a status (which may wait for a paused
        transport: ``submitted`` keeps the client's END_STREAM from submitting the call)."""
        stream.status, stream.submitted = (code, message), True
        self._flush_stream(stream)

    def _close_local(self, stream: Stream) -> None:
        stream.local_closed = True
        stream.active = False
        if stream.timer is not None:
            stream.timer.cancel()
        if not stream.remote_closed:
            # The call is over: the client need not send the rest of its requests.
            self._out += f.rst_stream(stream.sid, ErrorCode.NO_ERROR)
            stream.remote_closed = True
            stream.requests.put(RESET)
        self._forget(stream)

    def _forget(self, stream: Stream) -> None:
        if stream.timer is not None:
            stream.timer.cancel()
        self.streams.pop(stream.sid, None)
        self._blocked.pop(stream.sid, None)
        if not self.streams:
            self._close_if_idle()

    def _end_early(self, stream: Stream) -> None:
        """The call ends before its handler finished: tell the handler, run the callbacks."""
        stream.active = False
        stream.outbuf.clear()
        stream.requests.put(RESET)
        stream.wrote(1 << 62)
        stream.run_callbacks()

    def cancel(self, stream: Stream, rst: int, status: tuple[int, str] | None) -> None:
        """End a call early: with ``status`` (if the response has not ended), then RST."""
        if stream.local_closed or self._closed:
            return
        self._end_early(stream)
        if status is not None:
            self._out += _trailers(stream, status, self._peer_max_frame)
        stream.local_closed = True
        if not stream.remote_closed or status is None:
            self._out += f.rst_stream(stream.sid, rst)
            stream.remote_closed = True
        self._forget(stream)
        self._flush()

    def _fail_stream(
        self, stream: Stream, code: int, message: str, rst: int = ErrorCode.NO_ERROR
    ) -> None:
        # The status ends the response; the RST only asks the client to stop sending, with
        # NO_ERROR as after any complete response (RFC 9113 8.1): with CANCEL, grpcio's
        # client reports CANCELLED instead of the status.
        self.cancel(stream, rst, (code, message))

    def _expire(self, stream: Stream) -> None:
        stream.timer = None
        self.cancel(stream, ErrorCode.CANCEL, (_GRPC_DEADLINE_EXCEEDED, "Deadline Exceeded"))

    def _submit(self, stream: Stream) -> None:
        stream.submitted = True
        if not self.server.submit(stream):
            self._fail_stream(stream, _GRPC_UNAVAILABLE, "the server is shutting down")

    # -- the connection as a whole ------------------------------------------------------------

    def drain(self) -> None:
        """Shutdown: GOAWAY (streams so far still run), refuse new ones, close when idle."""
        if self._closed:
            return
        self._draining = True
        self._out += f.goaway(self._last_sid, ErrorCode.NO_ERROR)
        self._flush()
        self._close_if_idle()

    def abort_streams(self) -> None:
        """End every call still running (grace over), then close."""
        for stream in list(self.streams.values()):
            self.cancel(stream, ErrorCode.CANCEL, None)
        self._close_if_idle()
        if not self._closed and self.transport is not None:
            self._flush()
            self.transport.close()

    def _close_if_idle(self) -> None:
        if self._draining and not self.streams and not self._closed and self.transport:
            self._flush()
            self.transport.close()

    def fail(self, code: int, message: str) -> None:
        """A connection error: GOAWAY with ``code``, end every call, close."""
        _log.warning("HTTP/2 connection error: %s", message, extra={"peer": self.peer})
        self._out += f.goaway(self._last_sid, code, message.encode()[:256])
        for stream in list(self.streams.values()):
            self._end_early(stream)
        self.streams.clear()
        self._blocked.clear()
        self._flush()
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    def describe(self) -> dict[str, Any]:
        return {"peer": self.peer, "streams": len(self.streams)}
