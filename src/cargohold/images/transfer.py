"""Copying a set of blobs between two stores, parents after their children (used by ``copy``).

``Transfer(src, dst, ...).run(digests)`` copies each digest (all missing from ``dst``) through
a destination writer that expects its digest. Every blob starts at once, as far as the pools
allow (blobs that fit in one part have a pool of their own, so a config never queues behind
the layers); a blob whose children are in the same run streams its bytes, then waits for its
children's commits before its own. Blobs are submitted children first, so a waiting parent
only ever waits for blobs that have already started: there is no deadlock, and a copy stopped
at any moment never leaves a parent committed without its children.

A blob's ingestion ref is ``copy-<digest>``: an interrupted copy leaves an ingestion that the
next run resumes at its offset. The resumed bytes are trusted up to the commit, which checks
the whole digest; if it fails, the ingestion is dropped and the blob copied again from zero,
once (a second failure means the source itself does not match its digest: DataLossError).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass

from ..content import ReaderAt
from ..errors import (
    AlreadyExistsError,
    ContentError,
    DataLossError,
    FailedPreconditionError,
    UnavailableError,
)
from ..store import Store
from ..types import Descriptor
from .pool import WAIT_SLICE, finish

__all__ = ["BUSY", "COPIED", "EXISTED", "CopyProgress", "ProgressCallback", "Transfer"]
__all__ += ["TransferResult", "copy_ref", "read_size"]

_BUSY_WAIT = 15.0
"""How long a blob whose ingestion another copier holds is waited for before it is left BUSY."""
_BUSY_POLL = 0.25


@dataclass(frozen=True)
class CopyProgress:
    """How far a copy is: blobs and bytes copied so far, of those it has to copy."""

    blobs_done: int
    blobs_total: int
    bytes_done: int
    bytes_total: int


ProgressCallback = Callable[[CopyProgress], None]


COPIED = "copied"
EXISTED = "existed"
BUSY = "busy"
"""Another writer (another copy, another shard) holds the blob's ingestion right now; the
blob, and every parent waiting for it, is left for that writer or a later run."""


@dataclass
class TransferResult:
    """What a run did: digests committed by it, found committed meanwhile (another copier),
    left busy (see ``BUSY``), and how many copies resumed an earlier ingestion."""

    copied: set[str]
    existed: set[str]
    busy: set[str]
    resumed: int


class _ChildFailed(Exception):
    """A parent stops because a child's copy failed (the child's error is the one to report)."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def copy_ref(digest: str) -> str:
    """The ingestion ref a copy of ``digest`` uses: the same on every run, so it resumes."""
    return f"copy-{digest}"


class _Tally:
    """Counts shared by the copying threads; callbacks are made outside its lock."""

    def __init__(self, blobs: int, nbytes: int, progress: ProgressCallback | None) -> None:
        self._lock = threading.Lock()
        self._progress = progress
        self._blobs_total, self._bytes_total = blobs, nbytes
        self._blobs_done = 0
        self._bytes_done = 0

    def add(self, blobs: int, nbytes: int) -> None:
        with self._lock:
            self._blobs_done += blobs
            self._bytes_done += nbytes
            snapshot = CopyProgress(
                self._blobs_done, self._blobs_total, self._bytes_done, self._bytes_total
            )
        if self._progress is not None:
            self._progress(snapshot)


class _BlobSource:
    """A source blob read in order: each ``read`` is one ``read_at`` (served by the reader's
    read-ahead), with no buffering or hashing of its own."""

    def __init__(self, reader: ReaderAt, start: int) -> None:
        self._reader = reader
        self._pos = start

    def read(self, size: int) -> bytes:
        data = self._reader.read_at(self._pos, size)
        self._pos += len(data)
        return data

    def __enter__(self) -> _BlobSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.close()


_MAX_EXTRA_GETS = 4
"""How many times more ranged gets of the source ``read_size`` accepts to save a copy."""


def read_size(src_part: int, dst_part: int) -> int:
    """The size a copy reads its source in, which is also the source reader's window.

    The destination's part size, so each read is one fetched window handed to the writer as
    one whole part, with no slice copied out of a larger window (a copy of every byte, and
    fresh pages to fault in); unless that would cost the source more than ``_MAX_EXTRA_GETS``
    times its own number of ranged gets (a small-part destination such as ``memory://``):
    then the source's window, which the writer cuts parts out of.
    """
    return dst_part if dst_part * _MAX_EXTRA_GETS >= src_part else src_part


class _Signal:
    """Set when a blob's copy has published it (or found it there), or has ended at all."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.published = False

    def publish(self) -> None:
        self.published = True
        self.event.set()

    def ended(self, _future: Future[str]) -> None:
        self.event.set()


def _wait_for(children: Iterable[tuple[Future[str], _Signal]]) -> bool:
    """Wait until every child is published (its clean-up may still run) or has ended; whether
    all are committed (none left busy)."""
    ready = True
    for child, signal in children:
        while not signal.event.wait(WAIT_SLICE):  # renewed: an interruption stays prompt
            pass
        if signal.published:
            continue
        try:
            ready = child.result() != BUSY and ready  # ended: result() does not wait
        except BaseException as exc:
            raise _ChildFailed(exc) from exc
    return ready


class Transfer:
    """One run of blob copies from ``src`` to ``dst`` (see the module docstring)."""

    def __init__(
        self,
        src: Store,
        dst: Store,
        sizes: Mapping[str, int],
        labels: Mapping[str, Mapping[str, str]] | None,
        concurrency: int,
    ) -> None:
        self._src, self._dst = src, dst
        self._sizes = sizes
        self._labels = labels
        self._concurrency = concurrency
        self._resumed = 0
        self._lock = threading.Lock()

    def run(
        self,
        digests: Iterable[str],
        edges: Mapping[str, Iterable[str]],
        heights: Mapping[str, int],
        progress: ProgressCallback | None,
    ) -> TransferResult:
        """Copy ``digests``; ``edges`` gives each one's children, ``heights`` the order."""
        order = sorted(digests, key=lambda d: (heights.get(d, 0), -self._sizes[d], d))
        tally = _Tally(len(order), sum(self._sizes[d] for d in order), progress)
        small_limit = self._dst.part_size
        big = ThreadPoolExecutor(self._concurrency, thread_name_prefix="cargohold-copy")
        small = ThreadPoolExecutor(self._concurrency, thread_name_prefix="cargohold-copy-small")
        futures: dict[str, Future[str]] = {}
        signals: dict[str, _Signal] = {}
        try:
            for digest in order:
                children = [(futures[c], signals[c]) for c in edges.get(digest, ()) if c in futures]
                pool = small if self._sizes[digest] <= small_limit else big
                signal = signals[digest] = _Signal()
                future = pool.submit(self._copy, digest, children, tally, signal)
                future.add_done_callback(signal.ended)
                futures[digest] = future
            result = TransferResult(set(), set(), set(), 0)
            sets = {COPIED: result.copied, EXISTED: result.existed, BUSY: result.busy}
            for digest, outcome in finish(futures, _child_failure):
                sets[outcome].add(digest)
            result.resumed = self._resumed
            return result
        finally:
            big.shutdown(wait=False, cancel_futures=True)
            small.shutdown(wait=False, cancel_futures=True)

    def _copy(
        self,
        digest: str,
        children: list[tuple[Future[str], _Signal]],
        tally: _Tally,
        signal: _Signal,
    ) -> str:
        """Copy one blob; COPIED, EXISTED (already there) or BUSY (see ``BUSY``)."""
        size = self._sizes[digest]
        labels = (
            self._labels.get(digest, {})
            if self._labels is not None
            else self._src.info(digest).labels
        )
        ref = copy_ref(digest)
        counted = [0]
        try:
            return self._stream(digest, size, dict(labels), children, tally, counted, signal)
        except FailedPreconditionError:
            # The bytes do not hash to the digest. Drop the ingestion (a rerun must not
            # resume bytes known to be wrong) and start over once: resumed bytes may be the
            # culprit. Bytes read fresh from the source that still do not match are its fault.
            with suppress(ContentError):
                self._dst.abort(ref)
            tally.add(0, -counted[0])
            counted[0] = 0
        try:
            return self._stream(digest, size, dict(labels), children, tally, counted, signal)
        except FailedPreconditionError as exc:
            with suppress(ContentError):
                self._dst.abort(ref)
            raise DataLossError(
                f"content {digest} at the source does not match its digest; nothing was "
                f"written for it (verify the source: {exc})"
            ) from exc

    def _stream(
        self,
        digest: str,
        size: int,
        labels: dict[str, str],
        children: list[tuple[Future[str], _Signal]],
        tally: _Tally,
        counted: list[int],
        signal: _Signal,
    ) -> str:
        desc = Descriptor(digest=digest, size=size)
        deadline = time.monotonic() + _BUSY_WAIT
        # The destination's listing showed the blob absent: the open need not ask again,
        # unless another copier holds it (it may have committed it since).
        absent = True
        while True:
            try:
                writer = self._dst.writer(copy_ref(digest), desc, known_absent=absent)
                break
            except AlreadyExistsError:
                signal.publish()
                tally.add(1, size - counted[0])
                return EXISTED
            except UnavailableError:
                # Another copier (another shard finishing at the same moment) holds it: give
                # it a little time to commit, which turns this into EXISTED.
                absent = False
                if time.monotonic() >= deadline:
                    return BUSY
                time.sleep(_BUSY_POLL)
        with writer:
            offset = writer.status().offset
            if offset:
                with self._lock:
                    self._resumed += 1
            tally.add(0, offset)
            counted[0] += offset
            piece = read_size(self._src.part_size, self._dst.part_size)
            with _BlobSource(self._src.reader_at(desc, window=piece), offset) as source:
                while chunk := source.read(piece):
                    writer.write(chunk)
                    tally.add(0, len(chunk))
                    counted[0] += len(chunk)
            if not _wait_for(children):
                return BUSY  # the writer closes uncommitted: its ingestion stays, resumable
            try:
                writer.commit(size, digest, labels, published=signal.publish)
            except AlreadyExistsError:
                signal.publish()
                tally.add(1, 0)
                return EXISTED
        tally.add(1, 0)
        return COPIED


def _child_failure(error: BaseException) -> BaseException | None:
    """The child's error, for a parent that stopped because its child failed."""
    return error.original if isinstance(error, _ChildFailed) else None
