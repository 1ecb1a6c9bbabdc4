"""HTTP/2 frames (RFC 9113): constants, the 9-byte frame header, and builders for the frames
the server sends. Parsing is done where the bytes arrive (connection.py)."""

from __future__ import annotations

import struct

__all__ = [
    "ACK",
    "CONTINUATION",
    "DATA",
    "END_HEADERS",
    "END_STREAM",
    "GOAWAY",
    "HEADER",
    "HEADERS",
    "PADDED",
    "PING",
    "PREFACE",
    "PRIORITY",
    "PRIORITY_FLAG",
    "PUSH_PROMISE",
    "RST_STREAM",
    "SETTINGS",
    "WINDOW_UPDATE",
    "ErrorCode",
    "ProtocolError",
    "Setting",
    "frame",
    "goaway",
    "headers",
    "rst_stream",
    "settings",
    "window_update",
]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

HEADER = struct.Struct(">HBBBI")
"""Length (24 bits, as 16 + 8), type, flags, stream id (the top bit is reserved)."""
_U32 = struct.Struct(">I")
_SETTING = struct.Struct(">HI")
_TWO_U32 = struct.Struct(">II")


class Setting:
    """SETTINGS parameter identifiers."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6


class ErrorCode:
    """RST_STREAM and GOAWAY error codes."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9


class ProtocolError(Exception):
    """A connection error: the connection ends with GOAWAY carrying ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def frame(ftype: int, flags: int, sid: int, payload: bytes | bytearray | memoryview = b"") -> bytes:
    """One frame, header and payload."""
    n = len(payload)
    return HEADER.pack(n >> 8, n & 0xFF, ftype, flags, sid) + bytes(payload)


def headers(sid: int, block: bytes, max_frame: int, *, end_stream: bool) -> bytes:
    """A header block as one HEADERS frame or, when longer than ``max_frame`` (the peer's
    SETTINGS_MAX_FRAME_SIZE), as HEADERS and CONTINUATION frames (RFC 9113 6.10), to be sent
    together with no other frame between them."""
    flags = END_STREAM if end_stream else 0
    if len(block) <= max_frame:
        return frame(HEADERS, flags | END_HEADERS, sid, block)
    pieces = [block[i : i + max_frame] for i in range(0, len(block), max_frame)]
    out = [frame(HEADERS, flags, sid, pieces[0])]
    out += [frame(CONTINUATION, 0, sid, piece) for piece in pieces[1:-1]]
    out.append(frame(CONTINUATION, END_HEADERS, sid, pieces[-1]))
    return b"".join(out)


def settings(pairs: dict[int, int]) -> bytes:
    """A SETTINGS frame (not an ack) carrying ``pairs``."""
    return frame(SETTINGS, 0, 0, b"".join(_SETTING.pack(k, v) for k, v in pairs.items()))


def window_update(sid: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame for stream ``sid`` (0: the connection)."""
    return frame(WINDOW_UPDATE, 0, sid, _U32.pack(increment))


def rst_stream(sid: int, code: int) -> bytes:
    """An RST_STREAM frame."""
    return frame(RST_STREAM, 0, sid, _U32.pack(code))


def goaway(last_sid: int, code: int, debug: bytes = b"") -> bytes:
    """A GOAWAY frame: streams above ``last_sid`` were not and will not be processed."""
    return frame(GOAWAY, 0, 0, _TWO_U32.pack(last_sid, code) + debug)


def parse_settings(payload: bytes) -> list[tuple[int, int]]:
    """The (identifier, value) pairs of a SETTINGS payload (its length is a multiple of 6)."""
    if len(payload) % 6:
        raise ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6")
    return [_SETTING.unpack_from(payload, i) for i in range(0, len(payload), 6)]


def parse_u32(payload: bytes) -> int:
    """The 31-bit value of a 4-byte payload (WINDOW_UPDATE, RST_STREAM)."""
    if len(payload) != 4:
        raise ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "frame payload must be 4 bytes")
    value: int = _U32.unpack(payload)[0]
    return value


def strip_padding(flags: int, payload: bytes) -> bytes:
    """The payload of a DATA or HEADERS frame without its padding."""
    if not flags & PADDED:
        return payload
    if not payload or payload[0] >= len(payload):
        raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "padding exceeds the frame")
    return payload[1 : len(payload) - payload[0]]
