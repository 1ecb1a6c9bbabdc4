"""Digests: parsing, validation and a streaming hasher whose state can be saved and resumed.

An ingestion may be closed in one process and resumed in another (or after a crash), and its
final digest must still cover every byte. ``hashlib`` cannot export its state, so the hasher here
drives OpenSSL's SHA-256/SHA-512 through ``ctypes``: the context is a plain C struct whose bytes
are the state, saved next to the ingestion and loaded back on resume. The calls release the GIL,
so hashing overlaps part uploads running in other threads.

Where libcrypto cannot be loaded, the hasher falls back to ``hashlib`` and ``state()`` returns
``None``; the ingest layer then restarts such an ingestion from zero on resume instead of trusting
bytes it cannot verify.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from .errors import InvalidArgumentError

__all__ = ["ALGORITHMS", "Digest", "Hasher", "new_hasher", "parse_digest"]


@dataclass(frozen=True)
class _Algorithm:
    name: str
    hex_len: int
    digest_len: int
    ctx_size: int
    c_prefix: str


ALGORITHMS: dict[str, _Algorithm] = {
    "sha256": _Algorithm("sha256", 64, 32, 112, "SHA256"),
    "sha512": _Algorithm("sha512", 128, 64, 216, "SHA512"),
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


def _load_libcrypto() -> Any:
    name = ctypes.util.find_library("crypto")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        for spec in ALGORITHMS.values():
            for suffix, restype in (("_Init", ctypes.c_int), ("_Update", ctypes.c_int)):
                fn = getattr(lib, spec.c_prefix + suffix)
                fn.restype = restype
            final = getattr(lib, spec.c_prefix + "_Final")
            final.restype = ctypes.c_int
            final.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
            getattr(lib, spec.c_prefix + "_Update").argtypes = [
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_size_t,
            ]
            getattr(lib, spec.c_prefix + "_Init").argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return lib


class Hasher:
    """A streaming hasher for one algorithm; ``state()`` can be saved and resumed."""

    def __init__(self, algorithm: str, state: bytes | None = None) -> None:
        self.algorithm = algorithm
        self._spec = ALGORITHMS[algorithm]
        self._ctx: ctypes.Array[ctypes.c_char] | None = None
        self._fallback: Any = None
        if _LIB is None:
            if state is not None:
                raise InvalidArgumentError("saved hash state cannot be loaded without libcrypto")
            self._fallback = hashlib.new(algorithm)
            return
        self._ctx = ctypes.create_string_buffer(self._spec.ctx_size + 64)
        if state is None:
            getattr(_LIB, self._spec.c_prefix + "_Init")(self._ctx)
        else:
            if len(state) != self._spec.ctx_size:
                raise InvalidArgumentError(f"saved {algorithm} hash state has the wrong size")
            ctypes.memmove(self._ctx, state, len(state))

    def update(self, data: bytes | bytearray | memoryview, start: int = 0) -> None:
        """Feed ``data[start:]``; a bytearray is hashed in place, without a copy."""
        if self._fallback is not None:
            self._fallback.update(memoryview(data)[start:])
            return
        update = getattr(_LIB, self._spec.c_prefix + "_Update")
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
        getattr(_LIB, self._spec.c_prefix + "_Final")(out, scratch)
        return out.raw.hex()

    def digest(self) -> str:
        """``<algorithm>:<hex>`` of everything fed so far."""
        return f"{self.algorithm}:{self.hexdigest()}"

    def state(self) -> bytes | None:
        """The hasher's resumable state, or ``None`` where it cannot be exported."""
        if self._ctx is None:
            return None
        return self._ctx.raw[: self._spec.ctx_size]


def new_hasher(algorithm: str = "sha256", state: bytes | None = None) -> Hasher:
    """A hasher for ``algorithm``, fresh or resumed from ``state``."""
    if algorithm not in ALGORITHMS:
        raise InvalidArgumentError(f"unsupported digest algorithm {algorithm!r}")
    return Hasher(algorithm, state)


def _self_test(lib: Any) -> bool:
    """Trust libcrypto only if it agrees with hashlib, including across a state round trip."""
    global _LIB
    previous, _LIB = _LIB, lib
    try:
        for name in ALGORITHMS:
            first = Hasher(name)
            first.update(b"cargohold" * 50)
            resumed = Hasher(name, first.state())
            resumed.update(b"!")
            if resumed.hexdigest() != hashlib.new(name, b"cargohold" * 50 + b"!").hexdigest():
                return False
        return True
    except (OSError, AttributeError, ValueError):
        return False
    finally:
        _LIB = previous


_LIB: Any = None
_candidate = _load_libcrypto()
if _candidate is not None and _self_test(_candidate):
    _LIB = _candidate
