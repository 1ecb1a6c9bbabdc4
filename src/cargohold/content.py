"""The store's capabilities as small protocols, after containerd's content interfaces, and the
blob reader.

``Store`` implements all four; code that needs only part of it (the gRPC plugin's read path,
say) can ask for just that protocol.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Protocol

from .drivers.base import Driver
from .errors import InvalidArgumentError
from .readahead import ByteBudget, ReadAhead
from .types import Descriptor, Info, Status

__all__ = ["IngestManager", "Ingester", "Manager", "Provider", "ReaderAt"]


class ReaderAt:
    """Random access to one committed blob.

    A large read is split into at most ``streams`` ranged gets of at least ``chunk_size`` bytes
    each, fetched in parallel: fewer, larger requests than one per part, since every request
    costs money and a round trip.

    Sequential reads (each starting where an earlier one ended, as a decompressor's buffered
    reader issues them) are served from read-ahead windows of ``chunk_size`` bytes, up to
    ``max(streams, 2)`` of them fetched ahead in parallel (see ``readahead``). A reader may be
    shared by several threads.
    """

    def __init__(
        self,
        driver: Driver,
        key: str,
        size: int,
        executor: Executor,
        chunk_size: int,
        streams: int = 4,
        budget: ByteBudget | None = None,
    ) -> None:
        self._driver = driver
        self._key = key
        self.size = size
        self._executor = executor
        self._chunk = max(chunk_size, 1)
        self._streams = max(streams, 1)
        self._closed = False
        fetch = functools.partial(driver.get_range, key)  # no reference back to the reader
        self._ahead = ReadAhead(fetch, size, executor, self._chunk, max(self._streams, 2), budget)
        weakref.finalize(self, self._ahead.close)  # an unclosed reader still gives its bytes back

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset``: short at the end, ``b""`` at or past it."""
        if not isinstance(offset, int) or not isinstance(length, int):
            raise InvalidArgumentError("offset and length must be integers")
        if offset < 0 or length < 0:
            raise InvalidArgumentError(f"negative offset or length ({offset}, {length})")
        if self._closed:
            raise InvalidArgumentError("reader is closed")
        length = min(length, self.size - offset)
        if length <= 0:
            return b""
        ahead = self._ahead.read(offset, length)
        if ahead is not None:
            return ahead
        pieces = min(self._streams, -(-length // self._chunk))
        if pieces <= 1:
            return self._driver.get_range(self._key, offset, length)
        step = -(-length // pieces)
        futures = [
            self._executor.submit(
                self._driver.get_range, self._key, start, min(step, offset + length - start)
            )
            for start in range(offset, offset + length, step)
        ]
        return b"".join(f.result() for f in futures)

    def holds(self, offset: int) -> bool:
        """Whether a read at ``offset`` may be answered from bytes this reader holds (a
        read-ahead window fetched or under way); if not, it asks the store."""
        return self._ahead.holds(offset)

    def read_ready(self, offset: int, length: int) -> bytes | None:
        """``read_at``'s answer if a read-ahead window already holds it, without waiting or
        fetching (an event loop may call this); ``None``: call ``read_at``. Only a read that
        continues a sequential stream inside one window, and ends within the blob, is
        answered here."""
        if self._closed or offset < 0 or length <= 0 or offset + length > self.size:
            return None
        return self._ahead.read_ready(offset, length)

    def close(self) -> None:
        """Release the reader and its read-ahead windows."""
        self._closed = True
        self._ahead.close()

    def __enter__(self) -> ReaderAt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Provider(Protocol):
    """Reads committed content."""

    def info(self, digest: str) -> Info: ...

    def reader_at(self, desc: Descriptor | str) -> ReaderAt: ...


class Manager(Protocol):
    """Lists, relabels and removes committed content."""

    def update(self, info: Info, *fieldpaths: str) -> Info: ...

    def walk(self, *filters: str) -> Iterator[Info]: ...

    def delete(self, digest: str) -> None: ...


class Ingester(Protocol):
    """Starts or resumes ingestions."""

    def writer(self, ref: str, desc: Descriptor | None = None) -> object: ...


class IngestManager(Protocol):
    """Inspects and removes ingestions."""

    def status(self, ref: str) -> Status: ...

    def list_statuses(self, *filters: str) -> list[Status]: ...

    def abort(self, ref: str) -> None: ...
