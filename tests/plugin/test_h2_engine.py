"""The h2 engine's HTTP/2 layer (cargohold.plugin.h2) against grpcio's *client*, plus a few raw
HTTP/2 exchanges (hpack-encoded) where exact frames matter: flow control both ways with 1 MiB
messages, RST_STREAM mid-stream, GOAWAY at shutdown, protocol errors, unknown methods, status
trailers. The content service itself is covered by containerd's suite (test_content_suite.py)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import hpack
import pytest

import cargohold
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.gen import content_pb2_grpc as pb_grpc
from cargohold.plugin.h2 import H2Server
from cargohold.plugin.h2 import frames as f
from cargohold.plugin.server import ContentServer, parse_address

MIB = 1 << 20
SERVICE = "test.Echo"


class Handlers:
    """Test handlers; each records what it saw."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.callback_ran = threading.Event()
        self.queued_seen: list[int] = []
        self.sent = 0
        self.recorded: list[bytes] = []

    def echo(self, requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        """Bidi: each request back, after a pause (a slow consumer)."""
        stream = context._stream
        for message in requests:
            self.queued_seen.append(stream.requests.qsize())
            time.sleep(0.05)
            yield message

    def endless(self, request: bytes, context: Any) -> Iterator[bytes]:
        """Server streaming: 1 MiB messages until the client goes away."""
        context.add_callback(self.callback_ran.set)
        chunk = b"x" * MIB
        try:
            while context.is_active():
                yield chunk
                self.sent += 1
        finally:
            self.stopped.set()

    def slow(self, request: bytes, context: Any) -> bytes:
        """Unary: sleep the number of seconds asked for, while the call is active."""
        until = time.monotonic() + float(request.decode())
        while time.monotonic() < until and context.is_active():
            time.sleep(0.02)
        self.stopped.set()
        return b"done"

    def fail(self, request: bytes, context: Any) -> bytes:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, request.decode())
        raise AssertionError("unreachable")

    def fail_raw(self, request: bytes, context: Any) -> bytes:
        """Abort with the request as a file name decoded as ``os.fsdecode`` does."""
        context.abort(grpc.StatusCode.NOT_FOUND, request.decode("utf-8", "surrogateescape"))
        raise AssertionError("unreachable")

    def record(self, request: bytes, context: Any) -> bytes:
        self.recorded.append(request)
        return request

    def big(self, request: bytes, context: Any) -> bytes:
        return b"y" * int(request.decode())

    def generic(self) -> Any:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Echo": grpc.stream_stream_rpc_method_handler(self.echo),
                "Endless": grpc.unary_stream_rpc_method_handler(self.endless),
                "Slow": grpc.unary_unary_rpc_method_handler(self.slow),
                "Fail": grpc.unary_unary_rpc_method_handler(self.fail),
                "FailRaw": grpc.unary_unary_rpc_method_handler(self.fail_raw),
                "Big": grpc.unary_unary_rpc_method_handler(self.big),
                "Record": grpc.unary_unary_rpc_method_handler(self.record),
            },
        )


@pytest.fixture
def h2() -> Iterator[tuple[H2Server, Handlers, int]]:
    handlers = Handlers()
    server = H2Server(workers=4, max_message=64 * MIB)
    server.add_generic_rpc_handlers((handlers.generic(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield server, handlers, port
    finally:
        assert server.stop(0.5).wait(5)


def channel(port: int, **options: int) -> grpc.Channel:
    opts = [("grpc.max_receive_message_length", 64 * MIB), *options.items()]
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=opts)


def method(ch: grpc.Channel, name: str, kind: str) -> Callable[..., Any]:
    factory = getattr(ch, kind)
    return factory(f"/{SERVICE}/{name}")  # type: ignore[no-any-return]


# -- raw HTTP/2 ------------------------------------------------------------------------------


class RawClient:
    """Just enough of an HTTP/2 client to look at the frames the server sends."""

    def __init__(self, port: int, window: int = 65535) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.encoder = hpack.Encoder()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def start(self, settings: dict[int, int]) -> None:
        self.send(f.PREFACE + f.settings(settings))

    def call(self, sid: int, path: str, message: bytes, *, end: bool = True) -> None:
        block = self.encoder.encode(
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "test"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ]
        )
        self.send(f.frame(f.HEADERS, f.END_HEADERS, sid, block))
        body = struct.pack(">BI", 0, len(message)) + message
        self.send(f.frame(f.DATA, f.END_STREAM if end else 0, sid, body))

    def frame(self, timeout: float = 5.0) -> tuple[int, int, int, bytes] | None:
        """The next frame (type, flags, stream, payload); None when the server closed."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 9:
                hi, lo, ftype, flags, sid = f.HEADER.unpack_from(self.buf)
                length = (hi << 8) | lo
                if len(self.buf) >= 9 + length:
                    payload = self.buf[9 : 9 + length]
                    self.buf = self.buf[9 + length :]
                    return ftype, flags, sid & 0x7FFFFFFF, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def frames_until(
        self, stop: Callable[[tuple[int, int, int, bytes]], bool], timeout: float = 5.0
    ) -> list[tuple[int, int, int, bytes]]:
        got: list[tuple[int, int, int, bytes]] = []
        while True:
            fr = self.frame(timeout)
            assert fr is not None, f"connection closed after {got}"
            got.append(fr)
            if stop(fr):
                return got

    def close(self) -> None:
        self.sock.close()


def _quiet(client: RawClient, seconds: float) -> list[tuple[int, int, int, bytes]]:
    """Frames that arrive within ``seconds`` (none expected when a window is exhausted)."""
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            fr = client.frame(left)
        except TimeoutError:
            break
        if fr is None:
            break
        got.append(fr)
    return got


# -- flow control ---------------------------------------------------------------------------


def test_bidi_1mib_messages_with_a_small_client_window(h2: tuple[H2Server, Handlers, int]) -> None:
    """1 MiB messages both ways through a grpcio client whose receive window is 64 KiB and
    fixed (no BDP probing); the slow handler never has more than a window's worth queued."""
    _, handlers, port = h2
    messages = [bytes([i]) * MIB for i in range(12)]
    with channel(port, **{"grpc.http2.bdp_probe": 0, "grpc.http2.lookahead_bytes": 65536}) as ch:
        echo = method(ch, "Echo", "stream_stream")
        replies = list(echo(iter(messages), timeout=60))
    assert replies == messages
    # The stream window is 2 MiB: at most two whole 1 MiB messages can wait for the handler.
    assert max(handlers.queued_seen) <= 2, handlers.queued_seen


def test_server_honours_a_tiny_stream_window_and_frame_size() -> None:
    handlers = Handlers()
    server = H2Server(workers=2, max_message=64 * MIB)
    server.add_generic_rpc_handlers((handlers.generic(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = RawClient(port)
    try:
        client.start({f.Setting.INITIAL_WINDOW_SIZE: 1000})
        client.call(1, f"/{SERVICE}/Big", b"5000")
        got = _quiet(client, 1.0)
        data = [fr for fr in got if fr[0] == f.DATA]
        assert sum(len(fr[3]) for fr in data) == 1000  # exactly the window, then it waits
        assert not any(fr[0] == f.HEADERS and fr[1] & f.END_STREAM for fr in got)
        # A bigger initial window (SETTINGS) and a WINDOW_UPDATE let the rest through.
        client.send(f.settings({f.Setting.INITIAL_WINDOW_SIZE: 3000}))
        client.send(f.window_update(1, 10000))
        rest = client.frames_until(lambda fr: fr[0] == f.HEADERS and bool(fr[1] & f.END_STREAM))
        body = b"".join(fr[3] for fr in data + rest if fr[0] == f.DATA)
        assert body == struct.pack(">BI", 0, 5000) + b"y" * 5000
        assert all(len(fr[3]) <= 16384 for fr in rest)
        assert any(fr[0] == f.SETTINGS and fr[1] & f.ACK for fr in got + rest)
    finally:
        client.close()
        assert server.stop(0.5).wait(5)


def test_ping_is_acked_and_unknown_frames_ignored(h2: tuple[H2Server, Handlers, int]) -> None:
    _, _, port = h2
    client = RawClient(port)
    try:
        client.start({})
        client.send(f.frame(0xEE, 0, 0, b"whatever"))  # an unknown type: ignored
        client.send(f.frame(f.PING, 0, 0, b"12345678"))
        got = client.frames_until(lambda fr: fr[0] == f.PING)
        assert got[-1] == (f.PING, f.ACK, 0, b"12345678")
    finally:
        client.close()


def test_header_block_split_over_continuation(h2: tuple[H2Server, Handlers, int]) -> None:
    _, _, port = h2
    client = RawClient(port)
    try:
        client.start({})
        block = client.encoder.encode(
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", f"/{SERVICE}/Big"),
                (":authority", "test"),
                ("content-type", "application/grpc"),
                ("x-padding", "p" * 3000),
            ]
        )
        client.send(f.frame(f.HEADERS, 0, 1, block[:10]))
        client.send(f.frame(f.CONTINUATION, 0, 1, block[10:100]))
        client.send(f.frame(f.CONTINUATION, f.END_HEADERS, 1, block[100:]))
        client.send(f.frame(f.DATA, f.END_STREAM, 1, struct.pack(">BI", 0, 2) + b"10"))
        got = client.frames_until(lambda fr: fr[0] == f.HEADERS and bool(fr[1] & f.END_STREAM))
        assert b"".join(fr[3] for fr in got if fr[0] == f.DATA)[5:] == b"y" * 10
    finally:
        client.close()


# -- ending calls ---------------------------------------------------------------------------


def test_rst_stream_mid_read_stops_the_handler(h2: tuple[H2Server, Handlers, int]) -> None:
    _, handlers, port = h2
    # A fixed 64 KiB client window: the server can run ahead by its own send buffer (2 MiB)
    # and one held-back message, not more.
    with channel(port, **{"grpc.http2.bdp_probe": 0, "grpc.http2.lookahead_bytes": 65536}) as ch:
        call = method(ch, "Endless", "unary_stream")(b"", timeout=30)
        first = next(call)
        assert len(first) == MIB
        call.cancel()  # RST_STREAM(CANCEL), as containerd's ReaderAt does
        assert handlers.stopped.wait(5), "the handler was not told the client went away"
        assert handlers.callback_ran.wait(5), "the termination callback did not run"
    sent = handlers.sent
    assert sent < 8, f"the handler went on producing after the reset ({sent} MiB)"


def test_deadline_exceeded_ends_the_call_and_the_handler(
    h2: tuple[H2Server, Handlers, int],
) -> None:
    _, handlers, port = h2
    with channel(port) as ch:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as failed:
            method(ch, "Slow", "unary_unary")(b"10", timeout=0.5)
        assert failed.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 3
        assert handlers.stopped.wait(3)


def test_goaway_shutdown_lets_a_short_call_finish() -> None:
    handlers = Handlers()
    server = H2Server(workers=2, max_message=MIB)
    server.add_generic_rpc_handlers((handlers.generic(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with channel(port) as ch:
        slow: Any = method(ch, "Slow", "unary_unary")
        future = slow.future(b"0.5", timeout=10)
        time.sleep(0.2)
        started = time.monotonic()
        stopped = server.stop(3.0)
        assert future.result() == b"done"
        assert stopped.wait(5)
        assert time.monotonic() - started < 3.0
        with pytest.raises(grpc.RpcError) as refused:  # nothing listens any more
            method(ch, "Slow", "unary_unary")(b"0", timeout=2)
        assert refused.value.code() in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )


def test_goaway_shutdown_with_a_call_in_flight_ends_within_the_grace() -> None:
    handlers = Handlers()
    server = H2Server(workers=2, max_message=MIB)
    server.add_generic_rpc_handlers((handlers.generic(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = RawClient(port)
    try:
        client.start({})
        client.call(1, f"/{SERVICE}/Slow", b"30")
        time.sleep(0.3)
        grace = 1.0
        started = time.monotonic()
        stopped = server.stop(grace)
        goaway = client.frames_until(lambda fr: fr[0] == f.GOAWAY)[-1]
        assert struct.unpack(">II", goaway[3][:8]) == (1, f.ErrorCode.NO_ERROR)
        assert time.monotonic() - started < grace  # at once, not at the end of the grace
        rst = client.frames_until(lambda fr: fr[0] == f.RST_STREAM, timeout=grace + 3)[-1]
        assert rst[2] == 1 and struct.unpack(">I", rst[3])[0] == f.ErrorCode.CANCEL
        assert stopped.wait(grace + 3)
        took = time.monotonic() - started
        assert grace <= took < grace + 2.5, took
        assert handlers.stopped.wait(2), "the handler was not told the call ended"
    finally:
        client.close()


# -- errors ---------------------------------------------------------------------------------


def test_bad_preface_gets_goaway(h2: tuple[H2Server, Handlers, int]) -> None:
    _, _, port = h2
    client = RawClient(port)
    try:
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = []
        while (fr := client.frame()) is not None:
            got.append(fr)
        goaways = [fr for fr in got if fr[0] == f.GOAWAY]
        assert goaways, got
        assert struct.unpack(">I", goaways[0][3][4:8])[0] == f.ErrorCode.PROTOCOL_ERROR
    finally:
        client.close()


def test_protocol_error_gets_goaway(h2: tuple[H2Server, Handlers, int]) -> None:
    _, _, port = h2
    client = RawClient(port)
    try:
        client.start({})
        client.send(f.frame(f.DATA, 0, 0, b"nope"))  # DATA on stream 0
        got = client.frames_until(lambda fr: fr[0] == f.GOAWAY)
        assert struct.unpack(">I", got[-1][3][4:8])[0] == f.ErrorCode.PROTOCOL_ERROR
        assert client.frame() is None  # then the connection is closed
    finally:
        client.close()


def test_unknown_method_is_unimplemented(h2: tuple[H2Server, Handlers, int]) -> None:
    _, _, port = h2
    with channel(port) as ch:
        for kind in ("unary_unary", "unary_stream", "stream_stream"):
            call = getattr(ch, kind)("/no.Such/Method")
            with pytest.raises(grpc.RpcError) as failed:
                if kind == "stream_stream":
                    list(call(iter([b"a", b"b"]), timeout=5))
                elif kind == "unary_stream":
                    list(call(b"", timeout=5))
                else:
                    call(b"", timeout=5)
            assert failed.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_status_message_is_percent_encoded(h2: tuple[H2Server, Handlers, int]) -> None:
    _, _, port = h2
    message = "naïve 100% \n done: 日本"
    with channel(port) as ch, pytest.raises(grpc.RpcError) as failed:
        method(ch, "Fail", "unary_unary")(message.encode(), timeout=5)
    assert failed.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert failed.value.details() == message


def _codes(stub: pb_grpc.ContentStub) -> list[grpc.StatusCode]:
    codes = []
    for call in (
        lambda: stub.Info(pb.InfoRequest(digest="sha256:" + "0" * 64), timeout=5),
        lambda: stub.Info(pb.InfoRequest(digest="nonsense"), timeout=5),
        lambda: list(stub.Read(pb.ReadContentRequest(digest="x"), timeout=5)),
        lambda: stub.Status(pb.StatusRequest(ref="nothing"), timeout=5),
        lambda: list(stub.Write(iter([pb.WriteContentRequest()]), timeout=5)),
    ):
        try:
            call()
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())
    return codes


def test_content_service_gives_the_grpcio_engines_codes(tmp_path: Any) -> None:
    """The same servicer behind both engines: the same statuses for the same mistakes."""
    results = {}
    for engine in ("grpcio", "h2"):
        store = cargohold.open_store(f"file://{tmp_path}/{engine}")
        server = ContentServer(store, "n", parse_address("tcp://127.0.0.1:0"), engine=engine)
        server.start()
        try:
            with channel(server.port or 0) as ch:
                stub = pb_grpc.ContentStub(ch)  # type: ignore[no-untyped-call]
                results[engine] = _codes(stub)
        finally:
            assert server.stop(1.0)
            store.close()
    assert results["h2"] == results["grpcio"]


def test_only_indexed_header_blocks_are_reused() -> None:
    """The decoded-block cache only keeps blocks that cannot change the HPACK table."""
    from cargohold.plugin.h2.grpcwire import only_indexed

    encoder = hpack.Encoder()
    headers = [(":method", "POST"), (":path", f"/{SERVICE}/Big"), ("x-ns", "default")]
    first, again = encoder.encode(headers), encoder.encode(headers)
    assert not only_indexed(first)  # literals with incremental indexing: the table changes
    assert only_indexed(again)  # the same fields again: all indexed
    assert not only_indexed(bytes([0xFF, 0x80]))  # a truncated multi-byte index
    assert only_indexed(bytes([0xFF, 0x80, 0x01]))


# -- review fixes (h2review.md) -------------------------------------------------------------


@pytest.mark.parametrize("engine", ["grpcio", "h2"])
def test_health_watch_sends_its_first_status_at_once(engine: str) -> None:
    """Health.Watch yields SERVING and then waits for a change: the first status must not be
    held back behind a second message that never comes."""
    from concurrent import futures

    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    servicer = health.HealthServicer()
    server: Any
    if engine == "h2":
        server = H2Server(workers=2, max_message=MIB)
    else:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with channel(port) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
            started = time.monotonic()
            first = next(watch)
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            assert time.monotonic() - started < 2
            servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
    finally:
        servicer.enter_graceful_shutdown()
        stopped = server.stop(0.5)
        assert stopped.wait(5)


def test_status_message_with_a_lone_surrogate_ends_the_call(
    h2: tuple[H2Server, Handlers, int],
) -> None:
    """A status message UTF-8 cannot encode (``os.fsdecode`` of a name that is not UTF-8) is
    sent with a backslash escape, at once."""
    _, _, port = h2
    with channel(port) as ch, pytest.raises(grpc.RpcError) as failed:
        started = time.monotonic()
        method(ch, "FailRaw", "unary_unary")(b"no such file: caf\xe9", timeout=5)
    assert time.monotonic() - started < 2
    assert failed.value.code() is grpc.StatusCode.NOT_FOUND
    assert failed.value.details() == "no such file: caf\\udce9"


def test_a_status_that_cannot_be_sent_ends_the_call_with_internal(
    h2: tuple[H2Server, Handlers, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever fails while a call's end is sent (a loop callback), the call still ends, with
    INTERNAL, rather than leaving its stream open until the client's deadline."""
    from cargohold.plugin.h2 import connection
    from cargohold.plugin.h2.grpcwire import trailers as real_trailers

    real_enqueue = getattr(connection.Connection, "_enqueue", None)

    def trailers(code: int, message: str = "", *, headers_sent: bool = True) -> bytes:
        if message == "bad trailers":
            raise UnicodeEncodeError("utf-8", message, 0, 1, "test")
        return real_trailers(code, message, headers_sent=headers_sent)

    def enqueue(self: Any, stream: Any, data: bytes, status: tuple[int, str] | None) -> None:
        if status is not None and status[1] == "bad enqueue":
            raise RuntimeError("test")
        assert real_enqueue is not None
        real_enqueue(self, stream, data, status)

    monkeypatch.setattr(connection, "trailers", trailers)
    monkeypatch.setattr(connection.Connection, "_enqueue", enqueue, raising=False)
    _, _, port = h2
    with channel(port) as ch:
        for message in ("bad trailers", "bad enqueue"):
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as failed:
                method(ch, "Fail", "unary_unary")(message.encode(), timeout=5)
            assert time.monotonic() - started < 2, message
            assert failed.value.code() is grpc.StatusCode.INTERNAL, message
            assert failed.value.details() == "internal error"
        assert method(ch, "Big", "unary_unary")(b"3", timeout=5) == b"yyy"  # still serving


def test_calls_that_expired_while_queued_run_no_handler() -> None:
    """With every pool thread busy, calls whose deadline passes while they wait are not run
    when a thread frees up (grpcio skips them too)."""
    handlers = Handlers()
    server = H2Server(workers=1, max_message=MIB)
    server.add_generic_rpc_handlers((handlers.generic(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with channel(port) as ch:
            slow: Any = method(ch, "Slow", "unary_unary")
            blocker = slow.future(b"1.0", timeout=10)
            time.sleep(0.2)
            record = method(ch, "Record", "unary_unary")
            for i in range(3):
                with pytest.raises(grpc.RpcError) as failed:
                    record(b"late%d" % i, timeout=0.2)
                assert failed.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            assert blocker.result() == b"done"
            assert record(b"on time", timeout=5) == b"on time"
        assert handlers.recorded == [b"on time"]
    finally:
        assert server.stop(0.5).wait(5)


def test_a_reset_wins_over_requests_queued_before_it() -> None:
    """A handler of a call that has ended gets Cancelled, not the messages queued earlier."""
    from cargohold.plugin.h2.stream import END, Cancelled, Stream

    stream = Stream(Any, 1, 65535, 65535, MIB)  # type: ignore[arg-type]  # no conn needed
    stream.remote_closed = True  # no window to give back
    stream.requests.put((b"message", 10))
    stream.requests.put(END)
    stream.active = False
    with pytest.raises(Cancelled):
        stream.next_request()
    with pytest.raises(Cancelled):
        stream.next_request()


def _call_with_timeout(client: RawClient, sid: int, path: str, timeout: bytes) -> None:
    block = client.encoder.encode(
        [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", b"test"),
            (b"content-type", b"application/grpc"),
            (b"grpc-timeout", timeout),
        ]
    )
    client.send(f.frame(f.HEADERS, f.END_HEADERS, sid, block))
    client.send(f.frame(f.DATA, f.END_STREAM, sid, struct.pack(">BI", 0, 1) + b"3"))


def test_a_malformed_grpc_timeout_is_ignored(h2: tuple[H2Server, Handlers, int]) -> None:
    """Non-ASCII digits pass str.isdigit() but not int(): such a timeout is malformed, and
    ignored like any other malformed one."""
    from cargohold.plugin.h2.grpcwire import parse_timeout

    assert parse_timeout("\xb2S") is None
    assert parse_timeout("\u0663S") is None  # ARABIC-INDIC DIGIT THREE
    assert parse_timeout("15m") == pytest.approx(0.015)
    _, _, port = h2
    client = RawClient(port)
    try:
        client.start({})
        _call_with_timeout(client, 1, f"/{SERVICE}/Big", b"\xb2S")
        got = client.frames_until(lambda fr: fr[0] == f.HEADERS and bool(fr[1] & f.END_STREAM))
        assert b"".join(fr[3] for fr in got if fr[0] == f.DATA)[5:] == b"yyy"
    finally:
        client.close()


def test_an_unexpected_error_in_frame_handling_gets_goaway(
    h2: tuple[H2Server, Handlers, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception while handling frames ends the connection with GOAWAY(INTERNAL_ERROR)
    rather than a bare close."""
    server, _, port = h2

    def lookup(path: str) -> Any:
        raise RuntimeError("an interceptor failed")

    monkeypatch.setattr(server, "lookup", lookup)
    client = RawClient(port)
    try:
        client.start({})
        # HEADERS alone: a DATA frame that reached the socket after the server closed it
        # would get the client a TCP reset rather than the end of the stream.
        block = client.encoder.encode([(":method", "POST"), (":path", f"/{SERVICE}/Big")])
        client.send(f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, 1, block))
        got = client.frames_until(lambda fr: fr[0] == f.GOAWAY)
        assert struct.unpack(">I", got[-1][3][4:8])[0] == f.ErrorCode.INTERNAL_ERROR
        assert client.frame() is None
    finally:
        client.close()


def test_a_peer_that_does_not_read_cannot_grow_the_write_buffer(
    h2: tuple[H2Server, Handlers, int],
) -> None:
    """PINGs from a peer that never reads: the server stops reading while its writes wait,
    so the ACKs owed do not pile up without bound; reading the ACKs lets it go on."""
    server, _, port = h2
    client = RawClient(port)
    try:
        client.start({})
        pings = f.frame(f.PING, 0, 0, b"flooding") * 4096
        client.sock.settimeout(0.5)
        until = time.monotonic() + 3
        while time.monotonic() < until:
            try:
                client.sock.sendall(pings)
            except TimeoutError:
                break  # the server stopped reading
        (conn,) = server.connections
        assert conn.transport is not None
        buffered = conn.transport.get_write_buffer_size()
        assert buffered < 4 * MIB, f"{buffered} bytes of replies wait in the server"
        # Read what the server has for us: it reads again, and answers a last PING.
        done = threading.Event()

        def drain() -> None:
            while not done.is_set():
                fr = client.frame(10)
                if fr is None or fr == (f.PING, f.ACK, 0, b"the last"):
                    done.set()

        reader = threading.Thread(target=drain)
        reader.start()
        client.sock.settimeout(10)
        client.sock.sendall(f.frame(f.PING, 0, 0, b"the last"))
        reader.join(30)
        assert done.is_set() and not reader.is_alive()
    finally:
        client.close()


# -- review fixes #6-#8 (h2review.md) -------------------------------------------------------


def _trailer_block(client: RawClient, sid: int) -> list[tuple[int, int, int, bytes]]:
    """The frames of the trailer block of stream ``sid``: the HEADERS frame carrying
    END_STREAM and the CONTINUATION frames that follow it, up to END_HEADERS."""
    got: list[tuple[int, int, int, bytes]] = []
    while not (got and got[-1][1] & f.END_HEADERS):
        fr = client.frame()
        assert fr is not None, f"connection closed after {got}"
        if got or (fr[0] == f.HEADERS and fr[2] == sid and fr[1] & f.END_STREAM):
            got.append(fr)
    return got


def test_a_long_status_message_is_cut_to_whole_characters(
    h2: tuple[H2Server, Handlers, int],
) -> None:
    """A status message of many non-ASCII characters (percent-encoding makes each 6 bytes
    long here) is cut to about 4 KiB once encoded, never inside an escape or a character, so
    the trailers fit one frame and the client's metadata limit."""
    from urllib.parse import unquote_to_bytes

    from cargohold.plugin.h2.grpcwire import encode_message

    for lead in range(18):  # the cut falls at each place of an escape and of a character
        message = "a" * lead + "é😀" * 3000  # 6 and 12 bytes once encoded
        encoded = encode_message(message)
        assert 4096 - 12 < len(encoded) <= 4096, (lead, len(encoded))
        assert message.startswith(unquote_to_bytes(encoded).decode("utf-8")), lead
    assert encode_message("short é") == b"short %C3%A9"
    _, _, port = h2
    message = "é" * 20000
    with channel(port) as ch, pytest.raises(grpc.RpcError) as failed:
        method(ch, "Fail", "unary_unary")(message.encode(), timeout=5)
    assert failed.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    details = failed.value.details()
    assert details == "é" * (4096 // 6), len(details)


def test_a_trailer_block_longer_than_a_frame_goes_out_in_continuation_frames(
    h2: tuple[H2Server, Handlers, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no cap on the status message, a trailer block longer than the peer's
    SETTINGS_MAX_FRAME_SIZE is split into HEADERS + CONTINUATION (RFC 9113 6.10)."""
    from urllib.parse import quote

    from cargohold.plugin.h2 import grpcwire

    monkeypatch.setattr(grpcwire, "_MESSAGE_CAP", 1 << 20, raising=False)
    _, _, port = h2
    message = "é" * 6000  # 36,000 bytes encoded: three frames
    client = RawClient(port)
    try:
        client.start({})
        client.call(1, f"/{SERVICE}/Fail", message.encode())
        got = _trailer_block(client, 1)
        assert [fr[0] for fr in got] == [f.HEADERS, f.CONTINUATION, f.CONTINUATION]
        assert all(len(fr[3]) <= 16384 for fr in got)
        assert got[0][1] == f.END_STREAM and got[1][1] == 0 and got[2][1] == f.END_HEADERS
        headers = dict(hpack.Decoder().decode(b"".join(fr[3] for fr in got)))
        assert headers["grpc-status"] == "9"
        assert headers["grpc-message"] == quote(message)
        # A peer allowing bigger frames gets fewer of them.
        client.send(f.settings({f.Setting.MAX_FRAME_SIZE: 32768}))
        client.call(3, f"/{SERVICE}/Fail", message.encode())
        got = _trailer_block(client, 3)
        assert [(fr[0], len(fr[3]) <= 32768) for fr in got] == [
            (f.HEADERS, True),
            (f.CONTINUATION, True),
        ]
    finally:
        client.close()
    with channel(port, **{"grpc.max_metadata_size": MIB}) as ch:
        with pytest.raises(grpc.RpcError) as failed:
            method(ch, "Fail", "unary_unary")(message.encode(), timeout=5)
        assert failed.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert failed.value.details() == message


class _Transport:
    """A transport that keeps what is written (a Connection driven by hand, no loop)."""

    def __init__(self) -> None:
        self.out = bytearray()

    def write(self, data: bytes) -> None:
        self.out += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def frames(self) -> list[tuple[int, int, int, bytes]]:
        """The frames written so far (taken out)."""
        got, buf = [], bytes(self.out)
        self.out.clear()
        while buf:
            hi, lo, ftype, flags, sid = f.HEADER.unpack_from(buf)
            end = 9 + ((hi << 8) | lo)
            got.append((ftype, flags, sid, buf[9:end]))
            buf = buf[end:]
        return got


def test_an_unknown_method_while_writing_is_paused_is_unimplemented(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The status of an unknown method waits while the transport is paused; the client's
    END_STREAM arriving meanwhile submits no handler, and the call ends UNIMPLEMENTED."""
    import asyncio

    from cargohold.plugin.h2.connection import Connection

    handlers = Handlers()
    server = H2Server(workers=1, max_message=MIB)
    server.add_generic_rpc_handlers((handlers.generic(),))
    submitted: list[Any] = []
    monkeypatch.setattr(server, "submit", lambda stream: submitted.append(stream) or True)
    loop = asyncio.new_event_loop()
    transport = _Transport()
    try:
        conn = Connection(server, loop)
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(f.PREFACE + f.settings({}))
        transport.frames()
        conn.pause_writing()
        encoder = hpack.Encoder()
        block = encoder.encode([(":method", "POST"), (":path", "/no.Such/Method")])
        conn.data_received(f.frame(f.HEADERS, f.END_HEADERS, 1, block))
        conn.data_received(f.frame(f.DATA, f.END_STREAM, 1, struct.pack(">BI", 0, 1) + b"x"))
        assert not submitted, "a handler was submitted for an unknown method"
        conn.resume_writing()
        ends = [fr for fr in transport.frames() if fr[0] == f.HEADERS and fr[1] & f.END_STREAM]
        assert len(ends) == 1 and ends[0][2] == 1
        headers = dict(hpack.Decoder().decode(ends[0][3]))
        assert headers["grpc-status"] == "12", headers
        assert not conn.streams and not submitted
    finally:
        loop.close()
        assert server.stop(0).wait(5)


def test_an_initial_window_change_that_overflows_a_stream_window_is_a_connection_error(
    h2: tuple[H2Server, Handlers, int],
) -> None:
    """SETTINGS_INITIAL_WINDOW_SIZE moves every open stream's window by the change; one
    above 2^31-1 is a connection error FLOW_CONTROL_ERROR (RFC 9113 6.9.2)."""
    _, handlers, port = h2
    client = RawClient(port)
    try:
        client.start({})
        client.call(1, f"/{SERVICE}/Slow", b"5")  # open, sending nothing, for 5 s
        client.send(f.window_update(1, 2**31 - 1 - 65535))  # its window is now the maximum
        client.send(f.settings({f.Setting.INITIAL_WINDOW_SIZE: 65535}))  # no change: fine
        client.send(f.frame(f.PING, 0, 0, b"no error"))
        got = client.frames_until(lambda fr: fr[0] == f.PING)
        assert not any(fr[0] in (f.GOAWAY, f.RST_STREAM) for fr in got), got
        client.send(f.settings({f.Setting.INITIAL_WINDOW_SIZE: 65536}))  # one more: too big
        got = client.frames_until(lambda fr: fr[0] == f.GOAWAY)
        assert struct.unpack(">II", got[-1][3][:8]) == (1, f.ErrorCode.FLOW_CONTROL_ERROR)
        assert client.frame() is None
        assert handlers.stopped.wait(3), "the handler was not told the call ended"
    finally:
        client.close()
