"""Helpers the conformance suite's tests share: digests, deterministic bytes, small-part stores.

Importable on their own (``from cargohold.testing.helpers import random_bytes``) by a driver's
own tests too.
"""

from __future__ import annotations

import hashlib
import os
import sys

import cargohold
from cargohold import Store

__all__ = [
    "CHILD_MODULE",
    "SMALL_PART",
    "child_env",
    "digest_of",
    "open_small",
    "random_bytes",
    "read_all",
    "urandom",
]

SMALL_PART = 64 * 1024

# ``python -m CHILD_MODULE URL OPTIONS_JSON``: a store client in another OS process.
CHILD_MODULE = "cargohold.testing.conformance._child"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """The OCI digest string of ``data``."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def open_small(url: str, **options: object) -> Store:
    """Open ``url`` with the smallest part size its driver allows (at least 64 KiB)."""
    probe = cargohold.open_store(url)
    part = max(probe.driver.limits.min_part_size, SMALL_PART)
    probe.close()
    return cargohold.open_store(url, part_size=part, **options)


def read_all(store: Store, digest: str) -> bytes:
    """Every byte of a stored blob (asking for more than its size, to check the end)."""
    with store.reader_at(digest) as reader:
        return reader.read_at(0, reader.size + 10)


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (fast, no os.urandom for big sizes)."""
    if size <= 1 << 16:
        return hashlib.shake_256(seed.to_bytes(8, "big")).digest(size) if size else b""
    block = hashlib.shake_256(seed.to_bytes(8, "big")).digest(1 << 16)
    reps = size // len(block) + 1
    return (block * reps)[:size]


def urandom(size: int) -> bytes:
    """``size`` bytes from the OS's random source."""
    return os.urandom(size)


def child_env() -> dict[str, str]:
    """The environment for a child store process: this one's, with this process's ``sys.path``.

    A driver found through an entry point on a path added at run time (a test's ``sys.path``
    insert, say) is then found by the child too.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env
