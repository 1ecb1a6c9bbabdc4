"""The conformance suite's fixtures, built on the one fixture a driver's tests provide.

``cargohold_store_url`` (provided by the driver's tests): the URL of a fresh, empty store, one
per test. Everything else here is derived from it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from cargohold import Store

from .helpers import digest_of, open_small

__all__ = ["cargohold_shared_store_url", "cargohold_store_is_shared", "cstore", "ingest"]


@pytest.fixture
def cargohold_store_is_shared(cargohold_store_url: str) -> bool:
    """Whether other OS processes opening the URL see the same store (override to say so).

    The default is True for every scheme but ``memory://``, whose stores live in one process.
    """
    return urlsplit(cargohold_store_url).scheme != "memory"


@pytest.fixture
def cargohold_shared_store_url(cargohold_store_url: str, cargohold_store_is_shared: bool) -> str:
    """``cargohold_store_url`` for tests that cross OS processes; they skip on a local store."""
    if not cargohold_store_is_shared:
        pytest.skip("the store lives in one process (cargohold_store_is_shared is False)")
    return cargohold_store_url


@pytest.fixture
def cstore(cargohold_store_url: str) -> Iterator[Store]:
    """The store under test, with small parts so multipart paths run on small blobs."""
    opened = open_small(cargohold_store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def ingest(cstore: Store) -> Callable[..., str]:
    """Write ``data`` under a fresh ref and commit it; return its digest."""
    counter = itertools.count()

    def run(data: bytes, labels: dict[str, str] | None = None, ref: str | None = None) -> str:
        name = ref or f"ingest-{next(counter)}"
        with cstore.writer(name) as writer:
            writer.write(data)
            writer.commit(len(data), digest_of(data), labels)
        return digest_of(data)

    return run
