"""A hand-rolled HTTP/2 + gRPC server answering only Content/Read (rpcfloor experiment).

Not a product: a floor. It speaks just enough HTTP/2 (prior knowledge, no TLS) for a gRPC
client to call Read: connection preface, SETTINGS (+ack), PING (ack), WINDOW_UPDATE, RST_STREAM,
GOAWAY, HEADERS/CONTINUATION decoded with ``hpack`` (the request's block must be decoded to keep
the peer's dynamic table in step), DATA. Replies are built from constant header blocks (HPACK
literals without indexing, so no encoder state) and written with one ``transport.write`` per
RPC, honouring the peer's send windows (connection and stream) and its max frame size.
"""

from __future__ import annotations

import asyncio
import os
import struct
from concurrent import futures
from typing import Any

from hpack import Decoder

from cargohold.plugin.gen import content_pb2 as pb

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONT = (
    range(10)
)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
READ_PATH = "/containerd.services.content.v1.Content/Read"
READ_CHUNK = 1 << 20
OUR_STREAM_WINDOW = 1 << 20
HDR = struct.Struct(">HBBBI")  # length as 16+8 bits, type, flags, stream id


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return HDR.pack(n >> 8, n & 0xFF, ftype, flags, sid) + payload


def _lit(name: bytes, value: bytes) -> bytes:  # literal without indexing, new name, no huffman
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


# ":status: 200" is static entry 8; content-type (static 31) as a literal without indexing.
RESP_HEADERS = b"\x88" + b"\x0f\x10" + bytes([16]) + b"application/grpc"
TRAILERS_OK = _lit(b"grpc-status", b"0")


def trailers_only(code: int, message: bytes) -> bytes:
    return RESP_HEADERS + _lit(b"grpc-status", str(code).encode()) + _lit(b"grpc-message", message)


class _Stream:
    __slots__ = ("body", "headers", "path", "pending", "window")

    def __init__(self, window: int) -> None:
        self.headers = bytearray()
        self.body = bytearray()
        self.window = window
        self.pending = bytearray()  # DATA payload (gRPC framed) not yet sent: flow control
        self.path = ""


class H2MiniProtocol(asyncio.Protocol):
    def __init__(self, blob: memoryview, pool: Any = None) -> None:
        self.blob = blob
        self.pool = pool
        self.buf = bytearray()
        self.preface = False
        self.decoder = Decoder()
        self.streams: dict[int, _Stream] = {}
        self.conn_window = 65535
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.recv_unacked = 0
        self.transport: Any = None
        self.out = bytearray()
        self.blocked: dict[int, bytes] = {}  # stream id -> trailers waiting behind its data

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        settings = struct.pack(">HI", 0x4, OUR_STREAM_WINDOW) + struct.pack(">HI", 0x3, 1000)
        self.transport.write(
            frame(SETTINGS, 0, 0, settings) + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30))
        )

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        if not self.preface:
            if len(buf) < 24:
                return
            if bytes(buf[:24]) != PREFACE:
                self.transport.close()
                return
            self.preface = True
            pos = 24
        n = len(buf)
        unpack = HDR.unpack_from
        while n - pos >= 9:
            hi, lo, ftype, flags, sid = unpack(buf, pos)
            length = (hi << 8) | lo
            end = pos + 9 + length
            if end > n:
                break
            self.on_frame(ftype, flags, sid & 0x7FFFFFFF, bytes(buf[pos + 9 : end]))
            pos = end
        del buf[:pos]
        if self.out:
            self.transport.write(bytes(self.out))
            self.out.clear()

    def on_frame(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        if ftype in (HEADERS, CONT):
            if ftype == HEADERS:
                if flags & PADDED:
                    payload = payload[1 : len(payload) - payload[0]]
                if flags & PRIO:
                    payload = payload[5:]
                st = self.streams.get(sid)
                if st is None:
                    st = self.streams[sid] = _Stream(self.peer_initial_window)
            else:
                st = self.streams[sid]
            st.headers += payload
            if flags & END_HEADERS:
                for name, value in self.decoder.decode(bytes(st.headers), raw=True):
                    if name == b":path":
                        st.path = value.decode()
                st.headers.clear()
            if ftype == HEADERS and flags & END_STREAM:
                self.on_request(sid, st)
        elif ftype == DATA:
            self.recv_unacked += len(payload)
            st = self.streams.get(sid)
            if st is not None:
                if flags & PADDED:
                    payload = payload[1 : len(payload) - payload[0]]
                st.body += payload
                if flags & END_STREAM:
                    self.on_request(sid, st)
            if self.recv_unacked > (1 << 20):
                self.out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self.recv_unacked))
                self.recv_unacked = 0
        elif ftype == RST_STREAM:
            self.streams.pop(sid, None)
            self.blocked.pop(sid, None)
        elif ftype == WINDOW_UPDATE:
            (inc,) = struct.unpack(">I", payload)
            inc &= 0x7FFFFFFF
            if sid == 0:
                self.conn_window += inc
            elif sid in self.streams:
                self.streams[sid].window += inc
            self.flush_blocked()
        elif ftype == SETTINGS:
            if not flags & ACK:
                for i in range(0, len(payload), 6):
                    key, val = struct.unpack_from(">HI", payload, i)
                    if key == 0x4:
                        delta = val - self.peer_initial_window
                        self.peer_initial_window = val
                        for st in self.streams.values():
                            st.window += delta
                    elif key == 0x5:
                        self.peer_max_frame = val
                self.out += frame(SETTINGS, ACK, 0)
                self.flush_blocked()
        elif ftype == PING:
            if not flags & ACK:
                self.out += frame(PING, ACK, 0, payload)
        elif ftype == GOAWAY:
            self.transport.close()

    def on_request(self, sid: int, st: _Stream) -> None:
        if st.path != READ_PATH:
            block = trailers_only(12, b"unimplemented")
            self.out += frame(HEADERS, END_HEADERS | END_STREAM, sid, block)
            self.streams.pop(sid, None)
            return
        req = pb.ReadContentRequest.FromString(bytes(st.body)[5:])
        if self.pool is None:
            self.respond(sid, st, self.messages(req))
            return
        # as a store-backed server would: the read runs on a worker thread, the reply on the loop
        fut = asyncio.get_running_loop().run_in_executor(self.pool, self.messages, req)
        fut.add_done_callback(lambda f: self.respond_later(sid, f.result()))

    def messages(self, req: Any) -> bytes:
        blob = self.blob
        offset = max(req.offset, 0)
        end = len(blob) if req.size <= 0 else min(len(blob), offset + req.size)
        out = bytearray()
        while offset < end:
            n = min(READ_CHUNK, end - offset)
            msg = pb.ReadContentResponse(offset=offset, data=bytes(blob[offset : offset + n]))
            raw = msg.SerializeToString()
            out += b"\x00" + struct.pack(">I", len(raw)) + raw
            offset += n
        return bytes(out)

    def respond_later(self, sid: int, data: bytes) -> None:
        st = self.streams.get(sid)
        if st is None or self.transport.is_closing():
            return  # reset by the client meanwhile
        self.respond(sid, st, data)
        if self.out:
            self.transport.write(bytes(self.out))
            self.out.clear()

    def respond(self, sid: int, st: _Stream, data: bytes) -> None:
        self.out += frame(HEADERS, END_HEADERS, sid, RESP_HEADERS)
        st.pending += data
        self.blocked[sid] = frame(HEADERS, END_HEADERS | END_STREAM, sid, TRAILERS_OK)
        self.send_pending(sid, st)

    def send_pending(self, sid: int, st: _Stream) -> bool:
        """Send as much of the stream's data as the windows allow; trailers when it is all out."""
        pending = st.pending
        maxf = self.peer_max_frame
        sent = 0
        while sent < len(pending):
            n = min(len(pending) - sent, maxf, self.conn_window, st.window)
            if n <= 0:
                break
            self.out += frame(DATA, 0, sid, bytes(pending[sent : sent + n]))
            self.conn_window -= n
            st.window -= n
            sent += n
        del pending[:sent]
        if pending:
            return False
        self.out += self.blocked.pop(sid)
        self.streams.pop(sid, None)
        return True

    def flush_blocked(self) -> None:
        for sid in list(self.blocked):
            st = self.streams.get(sid)
            if st is None:
                self.blocked.pop(sid)
                continue
            if not self.send_pending(sid, st) and self.conn_window <= 0:
                break

    def connection_lost(self, exc: BaseException | None) -> None:
        self.streams.clear()
        self.blocked.clear()


async def serve_h2mini(sock: str, blob: memoryview) -> None:
    loop = asyncio.get_running_loop()
    pool = None
    if os.environ.get("H2MINI_THREAD") == "1":
        pool = futures.ThreadPoolExecutor(4)
    server = await loop.create_unix_server(lambda: H2MiniProtocol(blob, pool), sock)
    async with server:
        await server.serve_forever()
