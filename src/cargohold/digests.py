"""Digests: parsing, validation and a streaming hasher whose state can be saved and resumed.

An ingestion may be closed in one process and resumed in another, on another machine (or after a
crash), and its final digest must still cover every byte. ``hashlib`` cannot export its state, so
the hasher here drives OpenSSL's SHA-256/SHA-512 through ``ctypes``; the calls release the GIL, so
hashing overlaps part uploads running in other threads.

The saved state is *portable*: whatever the host's struct layout or byte order, ``state()``
returns the big-endian encoding Go's ``crypto/sha256`` and ``crypto/sha512`` use for
``MarshalBinary`` (format version ``STATE_FORMAT``)::

    magic (4: "sha\\x03" or "sha\\x07") | chaining words, big-endian (8 x 4 or 8 x 8)
    | the partial block (64 or 128, zero-padded) | bytes hashed so far (8, big-endian)

Loading checks the magic, the size and the padding; the byte count inside the state lets the
ingest layer check it against the offset it was saved with. Anything that fails is rejected
with ``InvalidArgumentError`` and the ingestion restarts from zero instead of trusting it.

libcrypto is loaded on first use, not at import, and only trusted after a self-test against
``hashlib`` that includes a state round trip. Where it is missing or fails (or
``CARGOHOLD_HASH_STATE=off``), the hasher falls back to ``hashlib`` and ``state()`` returns
``None``; a resumed ingestion then restarts from zero.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import re
import struct
import threading
from dataclasses import dataclass
from typing import Any

from .errors import InvalidArgumentError

__all__ = [
    "ALGORITHMS",
    "STATE_FORMAT",
    "Digest",
    "Hasher",
    "new_hasher",
    "parse_digest",
    "state_length",
]

STATE_FORMAT = 2
"""Version of the saved hash state's encoding (1 was OpenSSL's raw, native-layout context)."""


@dataclass(frozen=True)
class _Algorithm:
    name: str
    hex_len: int
    digest_len: int
    c_prefix: str
    magic: bytes
    word: str  # struct code of one chaining word
    block: int
    native: struct.Struct  # OpenSSL's context: h[8], Nl, Nh, data[block], num, md_len

    @property
    def portable(self) -> struct.Struct:
        return struct.Struct(f">4s8{self.word}{self.block}sQ")

    @property
    def ctx_size(self) -> int:
        return self.native.size


ALGORITHMS: dict[str, _Algorithm] = {
    "sha256": _Algorithm(
        "sha256", 64, 32, "SHA256", b"sha\x03", "I", 64, struct.Struct("=8I2I64sII")
    ),
    "sha512": _Algorithm(
        "sha512", 128, 64, "SHA512", b"sha\x07", "Q", 128, struct.Struct("=8Q2Q128sII")
    ),
}
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Digest:
    """A parsed, validated digest such as ``sha256:<64 hex>``."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_digest(value: object) -> Digest:
    """Validate ``sha256:<64 lowercase hex>`` or ``sha512:<128>``; else InvalidArgumentError."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"digest must be a string, got {type(value).__name__}")
    alg, sep, hexpart = value.partition(":")
    if not sep:
        raise InvalidArgumentError(f"invalid digest {value[:200]!r}: expected <algorithm>:<hex>")
    spec = ALGORITHMS.get(alg)
    if spec is None:
        raise InvalidArgumentError(
            f"invalid digest {value[:200]!r}: unsupported algorithm {alg[:50]!r} "
            f"(supported: {', '.join(ALGORITHMS)})"
        )
    if len(hexpart) != spec.hex_len or not _HEX.fullmatch(hexpart):
        raise InvalidArgumentError(
            f"invalid digest {value[:200]!r}: {alg} needs {spec.hex_len} lowercase hex characters"
        )
    return Digest(alg, hexpart)


# -- the portable state --------------------------------------------------------------------------


def _portable_from_native(spec: _Algorithm, ctx: bytes) -> bytes:
    fields = spec.native.unpack(ctx)
    words, low, high, data, num = fields[:8], fields[8], fields[9], fields[10], fields[11]
    bits = (high << (8 * struct.calcsize(spec.word))) | low
    length = bits // 8
    if num != length % spec.block:
        raise InvalidArgumentError(f"{spec.name} hash state is inconsistent")
    block = data[:num] + bytes(spec.block - num)
    return spec.portable.pack(spec.magic, *words, block, length & 0xFFFFFFFFFFFFFFFF)


def _native_from_portable(spec: _Algorithm, state: bytes) -> bytes:
    _magic, *rest = _unpack_portable(spec, state)
    words, block, length = rest[:8], rest[8], rest[9]
    num = length % spec.block
    bits = length * 8
    shift = 8 * struct.calcsize(spec.word)
    low, high = bits & ((1 << shift) - 1), bits >> shift
    return spec.native.pack(*words, low, high, block, num, spec.digest_len)


def _unpack_portable(spec: _Algorithm, state: bytes) -> tuple[Any, ...]:
    if len(state) != spec.portable.size:
        raise InvalidArgumentError(f"saved {spec.name} hash state has the wrong size")
    fields = spec.portable.unpack(state)
    if fields[0] != spec.magic:
        raise InvalidArgumentError(f"saved {spec.name} hash state has an unknown format")
    block, length = fields[9], fields[10]
    if any(block[length % spec.block :]):
        raise InvalidArgumentError(f"saved {spec.name} hash state is inconsistent")
    return tuple(fields)


def state_length(algorithm: str, state: bytes) -> int:
    """How many bytes the saved ``state`` has hashed (InvalidArgumentError if malformed)."""
    spec = ALGORITHMS.get(algorithm)
    if spec is None:
        raise InvalidArgumentError(f"unsupported digest algorithm {algorithm!r}")
    length: int = _unpack_portable(spec, state)[-1]
    return length


def legacy_state(algorithm: str, ctx: bytes) -> bytes:
    """Convert a format-1 state (this host's raw OpenSSL context) to the portable format."""
    spec = ALGORITHMS.get(algorithm)
    if spec is None:
        raise InvalidArgumentError(f"unsupported digest algorithm {algorithm!r}")
    if len(ctx) != spec.ctx_size:
        raise InvalidArgumentError(f"legacy {algorithm} hash state has the wrong size")
    return _portable_from_native(spec, ctx)


# -- libcrypto -----------------------------------------------------------------------------------


def _load_libcrypto() -> Any:
    if os.environ.get("CARGOHOLD_HASH_STATE", "").lower() in ("off", "0", "no"):
        return None
    name = ctypes.util.find_library("crypto")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        for spec in ALGORITHMS.values():
            init = getattr(lib, spec.c_prefix + "_Init")
            init.restype, init.argtypes = ctypes.c_int, [ctypes.c_void_p]
            update = getattr(lib, spec.c_prefix + "_Update")
            update.restype = ctypes.c_int
            update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            final = getattr(lib, spec.c_prefix + "_Final")
            final.restype, final.argtypes = ctypes.c_int, [ctypes.c_char_p, ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return lib


_LIB: Any = None
_LOADED = False
_LOAD_LOCK = threading.Lock()


def _libcrypto() -> Any:
    """libcrypto if it is usable here (loaded and self-tested once), else None."""
    global _LIB, _LOADED
    if _LOADED:
        return _LIB
    with _LOAD_LOCK:
        if not _LOADED:
            candidate = _load_libcrypto()
            _LIB = candidate if candidate is not None and _self_test(candidate) else None
            _LOADED = True
    return _LIB


def hash_state_supported() -> bool:
    """Whether hash states can be saved here (else resumed ingestions restart from zero)."""
    return _libcrypto() is not None


class Hasher:
    """A streaming hasher for one algorithm; ``state()`` can be saved and resumed."""

    def __init__(self, algorithm: str, state: bytes | None = None, *, lib: Any = None) -> None:
        self.algorithm = algorithm
        self._spec = ALGORITHMS[algorithm]
        self._lib = lib if lib is not None else _libcrypto()
        self._ctx: ctypes.Array[ctypes.c_char] | None = None
        self._fallback: Any = None
        if self._lib is None:
            if state is not None:
                raise InvalidArgumentError("saved hash state cannot be loaded without libcrypto")
            self._fallback = hashlib.new(algorithm)
            return
        self._ctx = ctypes.create_string_buffer(self._spec.ctx_size + 64)
        if state is None:
            getattr(self._lib, self._spec.c_prefix + "_Init")(self._ctx)
        else:
            native = _native_from_portable(self._spec, state)
            ctypes.memmove(self._ctx, native, len(native))

    def update(self, data: bytes | bytearray | memoryview, start: int = 0) -> None:
        """Feed ``data[start:]``; a bytearray is hashed in place, without a copy."""
        if self._fallback is not None:
            self._fallback.update(memoryview(data)[start:])
            return
        update = getattr(self._lib, self._spec.c_prefix + "_Update")
        if isinstance(data, bytearray):
            size = len(data) - start
            if size <= 0:
                return
            window = (ctypes.c_char * size).from_buffer(data, start)
            try:
                update(self._ctx, ctypes.addressof(window), size)
            finally:
                del window  # release the export so the bytearray can be resized again
            return
        if not isinstance(data, bytes) or start:
            data = bytes(memoryview(data)[start:])
        update(self._ctx, data, len(data))

    def hexdigest(self) -> str:
        """Hex digest of everything fed so far (the hasher can keep going)."""
        if self._fallback is not None:
            result: str = self._fallback.copy().hexdigest()
            return result
        assert self._ctx is not None
        scratch = ctypes.create_string_buffer(self._ctx.raw, len(self._ctx))
        out = ctypes.create_string_buffer(self._spec.digest_len)
        getattr(self._lib, self._spec.c_prefix + "_Final")(out, scratch)
        return out.raw.hex()

    def digest(self) -> str:
        """``<algorithm>:<hex>`` of everything fed so far."""
        return f"{self.algorithm}:{self.hexdigest()}"

    def state(self) -> bytes | None:
        """The portable resumable state (see the module docstring), or ``None`` without one."""
        if self._ctx is None:
            return None
        return _portable_from_native(self._spec, self._ctx.raw[: self._spec.ctx_size])


def new_hasher(algorithm: str = "sha256", state: bytes | None = None) -> Hasher:
    """A hasher for ``algorithm``, fresh or resumed from a portable ``state``."""
    if algorithm not in ALGORITHMS:
        raise InvalidArgumentError(f"unsupported digest algorithm {algorithm!r}")
    return Hasher(algorithm, state)


def _self_test(lib: Any) -> bool:
    """Trust libcrypto only if it agrees with hashlib, including across a state round trip."""
    try:
        for name in ALGORITHMS:
            for split in (0, 1, 63, 64, 65, 127, 128, 129, 450):
                data = bytes(range(256)) * 2
                first = Hasher(name, lib=lib)
                first.update(data[:split])
                state = first.state()
                assert state is not None
                if state_length(name, state) != split:
                    return False
                resumed = Hasher(name, state, lib=lib)
                resumed.update(data[split:])
                if resumed.hexdigest() != hashlib.new(name, data).hexdigest():
                    return False
        return True
    except (OSError, AttributeError, ValueError, struct.error, InvalidArgumentError):
        return False
