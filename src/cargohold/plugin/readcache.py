"""Readers shared by the Read RPCs of one blob.

containerd reads a layer through many short Read RPCs in a row (32 KiB each while it unpacks).
Opening a reader per RPC would cost a HEAD each and lose the read-ahead that sequential reads
earn, so the server keeps one reader per digest: at most ``MAX_READERS`` of them, each dropped
(and its read-ahead windows freed) after ``IDLE_SECONDS`` without a read, least recently used
first when there are too many (the cap is checked at the end of each Read; idle readers are
looked for at the end of a Read at most every ``EXPIRY_STEP`` seconds, so one may outlive its
idle time by that much; a reader whose pass reached the end of its blob already holds no
read-ahead window). A read from offset 0 starts a new pass
over the blob: it checks with one HEAD that the blob still exists, so a deleted blob is never
served from the cache.

A new reader needs the blob's size, which costs a HEAD of its own, except right after an Info
RPC of the same blob: containerd asks Info and then reads, so the servicer notes the size that
Info just answered (``note``) and a new reader opened within ``NOTE_SECONDS`` for a read that
starts inside the blob uses it. Its first read is a get of the blob itself, so a blob deleted
meanwhile is still answered NotFound. The same holds for a cached reader's fresh pass right
after an Info: it skips its HEAD when no window holds the first byte it reads (that read is
then a get); one whose windows may answer without a request still re-checks with a HEAD.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from ..content import ReaderAt
from ..digests import parse_digest
from ..store import Store

__all__ = [
    "EXPIRY_STEP",
    "IDLE_SECONDS",
    "MAX_NOTES",
    "MAX_READERS",
    "NOTE_SECONDS",
    "Lease",
    "ReaderCache",
    "shared_readers",
]

MAX_READERS = 64
IDLE_SECONDS = 10.0
EXPIRY_STEP = 1.0
"""Most seconds between two scans for idle readers (a quarter of the idle time if less)."""
NOTE_SECONDS = 5.0
"""How long the size an Info answered may open a new reader without a HEAD."""
MAX_NOTES = 1024


@dataclass
class Lease:
    """A cached reader and its bookkeeping (what ``ReaderCache.take`` hands out)."""

    reader: ReaderAt
    users: int = 0
    last_used: float = 0.0


class ReaderCache:
    """One shared ``ReaderAt`` per digest over ``store`` (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        max_readers: int = MAX_READERS,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self._store = store
        self._max = max(max_readers, 1)
        self._idle = idle_seconds
        self._entries: OrderedDict[str, Lease] = OrderedDict()
        self._lock = threading.Lock()
        self._expiry_step = min(max(idle_seconds, 0.0) / 4, EXPIRY_STEP)
        self._next_expiry = 0.0
        self._notes: OrderedDict[str, tuple[int, float]] = OrderedDict()
        """digest -> (size, until when it may open a reader), from Info answers."""
        self.clock = time.monotonic

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @contextlib.contextmanager
    def lease(self, digest: str, *, fresh: bool = False) -> Iterator[ReaderAt]:
        """The shared reader of ``digest`` for one RPC; ``fresh`` re-checks that it exists."""
        entry = self.take(digest, fresh=fresh)
        try:
            yield entry.reader
        finally:
            self.give(digest, entry)

    def note(self, digest: str, size: int) -> None:
        """An Info RPC just found ``digest`` stored with ``size`` bytes."""
        until = self.clock() + NOTE_SECONDS
        with self._lock:
            self._notes[digest] = (size, until)
            self._notes.move_to_end(digest)
            while len(self._notes) > MAX_NOTES:
                self._notes.popitem(last=False)

    def unnote(self, digest: str) -> None:
        """Forget the size noted for ``digest`` (it is being deleted)."""
        with self._lock:
            self._notes.pop(digest, None)

    def _noted_size(self, digest: str, offset: int) -> int | None:
        """The size an Info noted lately, if a new reader reading from ``offset`` may use it:
        the read then starts with a get of the blob, which finds it deleted if it is."""
        with self._lock:
            noted = self._notes.get(digest)
            if noted is None:
                return None
            size, until = noted
            if self.clock() > until:
                del self._notes[digest]
                return None
        return size if 0 <= offset < size else None

    def _checked_by_info(self, digest: str, entry: Lease, offset: int) -> bool:
        """A fresh pass needs no HEAD of its own when an Info just found the blob and the
        read will ask the store anyway (no window holds its first byte): that get finds a
        blob deleted meanwhile, as a new reader's does."""
        return self._noted_size(digest, offset) is not None and not entry.reader.holds(offset)

    def _open(self, digest: str, offset: int) -> ReaderAt:
        return self._store.reader_at(digest, size=self._noted_size(digest, offset))

    def take(self, digest: str, *, fresh: bool = False, offset: int = -1) -> Lease:
        """``lease`` without the context manager (the Read RPC's hot path): the entry whose
        ``reader`` serves one RPC; hand it back with ``give``. ``offset``: where the RPC
        starts reading (a new reader may then use a size noted by Info; -1: unknown)."""
        entry = self._take(digest)
        if entry is not None and fresh and not self._checked_by_info(digest, entry, offset):
            try:
                self._store.driver.head(self._store.layout.blob_key(parse_digest(digest)))
            except BaseException:
                self.give(digest, entry)
                self._discard(digest, entry)
                raise
        if entry is None:
            entry = self._insert(digest, self._open(digest, offset))
        return entry

    def take_cached(self, digest: str) -> Lease | None:
        """``take`` of a reader the cache holds already, or ``None``: never opens one and
        never asks the store (an event loop may call this). Hand it back with ``give``."""
        return self._take(digest)

    def give(self, digest: str, entry: Lease) -> None:
        """Hand back an entry from ``take``; expire idle readers now and then."""
        now = self.clock()
        with self._lock:
            entry.users -= 1
            entry.last_used = now
            dropped: list[Lease] = []
            if now >= self._next_expiry or len(self._entries) > self._max:
                dropped = self._expire(now)
                self._next_expiry = now + self._expiry_step
            if self._entries.get(digest) is not entry and entry.users == 0:
                dropped.append(entry)  # taken out of the cache while this RPC used it
        for old in dropped:
            old.reader.close()

    def close(self) -> None:
        """Drop every reader (readers in use stay usable until their RPC ends)."""
        with self._lock:
            idle = [e for e in self._entries.values() if e.users == 0]
            self._entries.clear()
        for entry in idle:
            entry.reader.close()

    # -- bookkeeping --------------------------------------------------------------------------

    def _take(self, digest: str) -> Lease | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is not None:
                entry.users += 1
                self._entries.move_to_end(digest)
            return entry

    def _insert(self, digest: str, reader: ReaderAt) -> Lease:
        with self._lock:
            entry = self._entries.get(digest)
            spare = None
            if entry is None:
                entry = self._entries[digest] = Lease(reader)
            else:
                spare = reader  # another RPC opened it meanwhile
            entry.users += 1
            self._entries.move_to_end(digest)
        if spare is not None:
            spare.close()
        return entry

    def _discard(self, digest: str, entry: Lease) -> None:
        with self._lock:
            if self._entries.get(digest) is entry:
                del self._entries[digest]
            idle = entry.users == 0
        if idle:
            entry.reader.close()

    def _expire(self, now: float) -> list[Lease]:
        """Under the lock: take out idle readers, and unused ones beyond the cap."""
        out = [
            d for d, e in self._entries.items() if e.users == 0 and now - e.last_used > self._idle
        ]
        unused = [d for d, e in self._entries.items() if e.users == 0 and d not in out]
        excess = len(self._entries) - len(out) - self._max
        out += unused[: max(excess, 0)]
        return [self._entries.pop(d) for d in out]


_CACHES: weakref.WeakKeyDictionary[Store, ReaderCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def shared_readers(store: Store) -> ReaderCache:
    """The reader cache of ``store`` (one per store, so one per server)."""
    with _CACHES_LOCK:
        cache = _CACHES.get(store)
        if cache is None:
            cache = _CACHES[store] = ReaderCache(store)
        return cache
