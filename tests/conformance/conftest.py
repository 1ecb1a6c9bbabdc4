"""Fixtures of the conformance suite: a store per kind with small parts, and helpers."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator

import pytest

import cargohold
from cargohold import Store

SMALL_PART = 64 * 1024


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def open_small(url: str, **options: object) -> Store:
    """Open ``url`` with the smallest part size its driver allows (at least 64 KiB)."""
    probe = cargohold.open_store(url)
    part = max(probe.driver.limits.min_part_size, SMALL_PART)
    probe.close()
    return cargohold.open_store(url, part_size=part, **options)


@pytest.fixture
def cstore(store_url: str) -> Iterator[Store]:
    """The store under test, with small parts so multipart paths run on small blobs."""
    opened = open_small(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def ingest(cstore: Store) -> Callable[..., str]:
    """Write ``data`` under a fresh ref and commit it; return its digest."""
    counter = iter(range(1_000_000))

    def run(data: bytes, labels: dict[str, str] | None = None, ref: str | None = None) -> str:
        name = ref or f"ingest-{next(counter)}"
        with cstore.writer(name) as writer:
            writer.write(data)
            writer.commit(len(data), digest_of(data), labels)
        return digest_of(data)

    return run


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
    return os.urandom(size)
