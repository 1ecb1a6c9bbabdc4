"""gRPC over HTTP/2: length-prefixed messages, response header blocks, status trailers.

Response header blocks are HPACK literals "without indexing" (RFC 7541 6.2.2) with plain
(not Huffman) strings, so the server keeps no encoder state: every block decodes the same
whatever the peer's dynamic table holds. Only request blocks need a decoder (connection.py);
``only_indexed`` tells which of them leave its state as it was.
"""

from __future__ import annotations

import struct
from urllib.parse import quote

__all__ = [
    "RESPONSE_HEADERS",
    "MessageReader",
    "MessageTooLarge",
    "only_indexed",
    "parse_timeout",
    "prefix",
    "trailers",
]

_PREFIX = struct.Struct(">BI")


def prefix(length: int) -> bytes:
    """The 5-byte gRPC message prefix: not compressed, ``length`` bytes follow."""
    return _PREFIX.pack(0, length)


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """HPACK integer encoding (RFC 7541 5.1) with ``first`` holding the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes) -> bytes:
    """A header field as a literal without indexing, new name, no Huffman coding."""
    return b"\x00" + _integer(len(name), 7, 0) + name + _integer(len(value), 7, 0) + value


# ":status: 200" is static entry 8 (indexed); content-type as a literal with the static
# table's name index 31 ("content-type"), without indexing.
RESPONSE_HEADERS = b"\x88" + b"\x0f\x10" + _integer(16, 7, 0) + b"application/grpc"
"""The header block that opens every response."""
_OK = literal(b"grpc-status", b"0")


_SAFE = " !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~"
"""Printable ASCII but ``%``: what ``grpc-message`` carries as is."""
_WIDTH = [len(quote(bytes([b]), safe=_SAFE)) for b in range(256)]
"""How many bytes each byte of the UTF-8 message takes once encoded: 1, or 3 (``%XX``)."""
_MESSAGE_CAP = 4096
"""The longest ``grpc-message`` sent, once encoded: well within a frame of the smallest size
a peer may allow (16 KiB) and within clients' metadata limits (grpcio's refuses 16 KiB)."""


def encode_message(message: str) -> bytes:
    """``grpc-message`` as the gRPC spec wants it: UTF-8, percent-encoded outside printable
    ASCII (and ``%`` itself). What UTF-8 cannot encode (a lone surrogate, as ``os.fsdecode``
    gives for a name that is not UTF-8) is written as a backslash escape. A message longer
    than ``_MESSAGE_CAP`` once encoded is cut to whole characters that fit."""
    raw = message.encode("utf-8", "backslashreplace")
    encoded = quote(raw, safe=_SAFE)
    if len(encoded) <= _MESSAGE_CAP:
        return encoded.encode()
    n, width = 0, 0
    while width + _WIDTH[raw[n]] <= _MESSAGE_CAP:  # stops within raw: it does not fit whole
        width += _WIDTH[raw[n]]
        n += 1
    while n and raw[n] & 0xC0 == 0x80:  # raw[n] continues a character: leave that out too
        n -= 1
    return quote(raw[:n], safe=_SAFE).encode()


def trailers(code: int, message: str = "", *, headers_sent: bool = True) -> bytes:
    """The trailer block ending a response (with the response headers too when none were
    sent: a "trailers-only" response)."""
    block = _OK if code == 0 else literal(b"grpc-status", str(code).encode())
    if message:
        block += literal(b"grpc-message", encode_message(message))
    return block if headers_sent else RESPONSE_HEADERS + block


def only_indexed(block: bytes) -> bool:
    """True if every field of an HPACK block is an indexed field (RFC 7541 6.1): decoding
    such a block changes no decoder state."""
    i, n = 0, len(block)
    while i < n:
        first = block[i]
        if not first & 0x80:
            return False  # a literal or a table size update
        i += 1
        if first & 0x7F == 0x7F:  # the index continues in 7-bit groups
            while i < n and block[i] & 0x80:
                i += 1
            i += 1
    return i == n


_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def parse_timeout(value: str) -> float | None:
    """Seconds from a ``grpc-timeout`` value (1-8 digits and a unit); None if malformed."""
    digits = value[:-1]  # isdigit() alone also takes non-ASCII digits int() refuses ("\xb2")
    if len(value) < 2 or len(value) > 9 or not (digits.isascii() and digits.isdigit()):
        return None
    unit = _UNITS.get(value[-1])
    return None if unit is None else int(digits) * unit


class MessageTooLarge(Exception):
    """A request message longer than the server accepts."""


class MessageReader:
    """Splits a stream's DATA bytes into gRPC messages."""

    __slots__ = ("_buf", "_limit")

    def __init__(self, limit: int) -> None:
        self._buf = bytearray()
        self._limit = limit

    @property
    def partial(self) -> int:
        """Bytes held of a message not complete yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[bytes, int]]:
        """Add ``data``; return the messages it completed as (payload, bytes on the wire).

        Raises MessageTooLarge for a message over the limit, ValueError for a compressed one
        (this server never advertises an encoding, so a client must not compress).
        """
        buf = self._buf
        buf += data
        out: list[tuple[bytes, int]] = []
        pos = 0
        while len(buf) - pos >= 5:
            flag, length = _PREFIX.unpack_from(buf, pos)
            if flag:
                raise ValueError("compressed request messages are not supported")
            if length > self._limit:
                raise MessageTooLarge(f"request message of {length} bytes > {self._limit}")
            end = pos + 5 + length
            if end > len(buf):
                break
            out.append((bytes(buf[pos + 5 : end]), 5 + length))
            pos = end
        if pos:
            del buf[:pos]
        return out
