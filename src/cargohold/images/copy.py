"""Copy images (or a whole store) from one store to another, whatever their drivers.

``copy(src, dst, names)`` copies the blobs of the named images (the graph closure of each name
on the source), or with ``names=None`` every blob of the source and every name, then writes the
names. How it goes:

1. The destination is *listed* once (``Store.list_blobs``): what it holds is never asked blob
   by blob, so a rerun with nothing left to copy costs the destination a listing and a read of
   its names.
2. What is missing is copied in waves by graph height: layers and configs first, then the
   manifests that refer to them, then indexes. A copy killed at any point never leaves a
   manifest at the destination whose children are missing.
3. Each blob streams from a source ``reader_at`` into a destination writer that expects its
   digest (checked at commit, so nothing wrong is ever published), at most ``concurrency``
   blobs at a time, each with the writer's own bounded parts in flight: memory stays bounded
   whatever the blob sizes. The source's labels go with the commit.
4. The ingestion ref of a blob is ``copy-<digest>``: a blob whose copy was interrupted resumes
   from the destination's ingestion state where the driver allows it.
5. Names are written last, together, in one ``set_many`` — and only names whose whole closure is
   at the destination.

Sharding (``shard=(i, n)``): shard ``i`` copies the blobs whose digest, as a number, is ``i``
modulo ``n``. The shards are disjoint and together are the whole. A name needs blobs of every
shard, so a shard writes a name only once its whole closure is present at the destination (it
lists the destination again at the end to see what the other shards did); a name still
waiting for another shard is reported in ``CopySummary.names_pending``, and whichever shard
finishes last — or any later run — writes it.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from ..content import ReaderAt
from ..digests import parse_digest
from ..errors import (
    ContentError,
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
)
from ..helpers import Progress, write_blob
from ..names import NameStore
from ..store import Store
from ..types import Descriptor
from . import graph
from .closure import explore, heights

__all__ = [
    "DEFAULT_CONCURRENCY",
    "CopyProgress",
    "CopySummary",
    "copy",
    "copy_ref",
    "in_shard",
    "parse_shard",
]

DEFAULT_CONCURRENCY = 4
"""Blobs copied at once (each also uploads its parts in parallel)."""

_WAIT_SLICE = 0.5
"""How long one wait for a wave's copies lasts before it is renewed (keeps Ctrl-C prompt)."""


@dataclass(frozen=True)
class CopyProgress:
    """How far a copy is: blobs and bytes copied so far, of those it has to copy."""

    blobs_done: int
    blobs_total: int
    bytes_done: int
    bytes_total: int


ProgressCallback = Callable[[CopyProgress], None]


@dataclass
class CopySummary:
    """What a copy did.

    ``blobs_copied``/``bytes_copied``: written to the destination by this run (``resumed``
    of them continued an interrupted copy). ``blobs_skipped``/``bytes_skipped``: already there.
    ``blobs_other_shards``: left to the other shards. ``names_written``: names set at the
    destination; ``names_unchanged``: names it already had, pointing at the same content;
    ``names_pending``: names whose closure is not complete at the destination yet (sharding).
    ``names_skipped``: names of the source that point at a blob the source does not hold.
    ``missing_in_source``: digests a selected image refers to that the source does not hold
    (such as the other platforms of an index pulled for one platform); they are not copied.
    """

    blobs_copied: int = 0
    bytes_copied: int = 0
    blobs_skipped: int = 0
    bytes_skipped: int = 0
    blobs_other_shards: int = 0
    resumed: int = 0
    names_written: list[str] = field(default_factory=list)
    names_unchanged: list[str] = field(default_factory=list)
    names_pending: list[str] = field(default_factory=list)
    names_skipped: list[str] = field(default_factory=list)
    missing_in_source: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "blobs_copied": self.blobs_copied,
            "bytes_copied": self.bytes_copied,
            "blobs_skipped": self.blobs_skipped,
            "bytes_skipped": self.bytes_skipped,
            "blobs_other_shards": self.blobs_other_shards,
            "resumed": self.resumed,
            "names_written": list(self.names_written),
            "names_unchanged": list(self.names_unchanged),
            "names_pending": list(self.names_pending),
            "names_skipped": list(self.names_skipped),
            "missing_in_source": list(self.missing_in_source),
        }


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` as ``(I, N)``, with ``0 <= I < N``."""
    index, sep, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = (-1, 0)
    if not sep or not 0 <= shard[0] < shard[1]:
        raise InvalidArgumentError(f"a shard looks like I/N with 0 <= I < N, got {text!r}")
    return shard


def in_shard(digest: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``digest`` belongs to ``shard`` (its hex, as a number, modulo the count)."""
    if shard is None:
        return True
    return int(parse_digest(digest).hex, 16) % shard[1] == shard[0]


def copy_ref(digest: str) -> str:
    """The ingestion ref a copy of ``digest`` uses: the same on every run, so it resumes."""
    return f"copy-{digest}"


def names_of(store: Store) -> NameStore:
    """The store's image names (``store.names``)."""
    return store.names


@dataclass
class _Plan:
    """What to copy: every wanted blob with its size, height and (for --all) labels."""

    sizes: dict[str, int]
    heights: dict[str, int]
    labels: dict[str, Mapping[str, str]] | None
    closures: dict[str, set[str]]
    targets: dict[str, Descriptor]
    missing: list[str]


def _plan(src: Store, names: Sequence[str] | None) -> _Plan:
    wanted_names = names_of(src)
    if names is None:
        targets = {item.name: item.target for item in wanted_names.list()}
    else:
        targets = {}
        for name in dict.fromkeys(names):
            targets[name] = wanted_names.get(name).target  # NotFoundError names it
    if names is None:
        infos = {info.digest: info for info in src.walk()}
        present = {digest: info.size for digest, info in infos.items()}
    else:
        present = dict(src.list_blobs())
    found = explore(src, targets.values(), present)
    edges: dict[str, list[str]] = {d: list(kids) for d, kids in found.edges.items()}
    labels: dict[str, Mapping[str, str]] | None = None
    if names is None:
        labels = {digest: info.labels for digest, info in infos.items()}
        for digest, info in infos.items():
            by_label = [d for d in graph.label_children(info.labels) if d in present]
            if by_label:
                edges.setdefault(digest, [])
                edges[digest] = list(dict.fromkeys([*edges[digest], *by_label]))
        blobs = set(present)
    else:
        blobs = set().union(*found.closures.values()) & set(present) if found.closures else set()
    ranked = heights({d: kids for d, kids in edges.items() if d in blobs})
    return _Plan(
        sizes={d: present[d] for d in blobs},
        heights={d: ranked.get(d, 0) for d in blobs},
        labels=labels,
        closures={name: found.closures[t.digest] for name, t in targets.items()},
        targets=targets,
        missing=sorted(found.absent),
    )


class _Tally:
    """Counts shared by the copying threads; callbacks are made outside its lock."""

    def __init__(self, blobs_total: int, bytes_total: int, progress: ProgressCallback | None):
        self._lock = threading.Lock()
        self._progress = progress
        self.blobs_total = blobs_total
        self.bytes_total = bytes_total
        self.blobs_done = 0
        self.bytes_done = 0

    def add(self, blobs: int, nbytes: int) -> None:
        with self._lock:
            self.blobs_done += blobs
            self.bytes_done += nbytes
            snapshot = CopyProgress(
                self.blobs_done, self.blobs_total, self.bytes_done, self.bytes_total
            )
        if self._progress is not None:
            self._progress(snapshot)


class _BlobSource:
    """A source blob as the seekable file object ``write_blob`` reads: each ``read`` is one
    ``read_at`` (served by the reader's read-ahead), with no buffering or hashing of its own."""

    def __init__(self, reader: ReaderAt) -> None:
        self._reader = reader
        self._pos = 0

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            size = self._reader.size - self._pos
        data = self._reader.read_at(self._pos, size)
        self._pos += len(data)
        return data

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._reader.size}
        self._pos = max(base[whence] + offset, 0)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def __enter__(self) -> _BlobSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.close()


def _copy_blob(
    src: Store, dst: Store, digest: str, size: int, labels: Mapping[str, str] | None, tally: _Tally
) -> tuple[bool, bool]:
    """Copy one blob; return (copied by this call, resumed an earlier ingestion)."""
    if labels is None:
        labels = src.info(digest).labels
    seen = [0]

    def report(progress: Progress) -> None:
        delta, seen[0] = progress.done - seen[0], progress.done
        if delta:
            tally.add(0, delta)

    ref = copy_ref(digest)
    # The source is read without hashing: the destination's writer expects the digest and
    # checks it at commit, so a damaged source blob is refused there, once.
    with _BlobSource(src.reader_at(Descriptor(digest=digest, size=size))) as source:
        try:
            result = write_blob(
                dst, ref, source, expected=digest, size=size, labels=labels, progress=report
            )
        except FailedPreconditionError as exc:
            with suppress(ContentError):
                dst.abort(ref)  # a rerun must not resume bytes known to be wrong
            raise DataLossError(
                f"content {digest} at the source does not match its digest; nothing was "
                f"written for it (verify the source: {exc})"
            ) from exc
    tally.add(1, size - seen[0])
    return not result.existed, result.resumed_at > 0


def _run_waves(
    src: Store,
    dst: Store,
    plan: _Plan,
    todo: list[str],
    concurrency: int,
    tally: _Tally,
    summary: CopySummary,
) -> set[str]:
    """Copy ``todo`` lowest height first, a wave at a time; return the digests now present."""
    done: set[str] = set()
    waves: dict[int, list[str]] = {}
    for digest in todo:
        waves.setdefault(plan.heights[digest], []).append(digest)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cargohold-copy")
    try:
        for height in sorted(waves):
            # Largest first: the long copies start early and the wave ends sooner.
            wave = sorted(waves[height], key=lambda d: -plan.sizes[d])
            futures: dict[Future[tuple[bool, bool]], str] = {
                pool.submit(
                    _copy_blob,
                    src,
                    dst,
                    digest,
                    plan.sizes[digest],
                    None if plan.labels is None else plan.labels.get(digest, {}),
                    tally,
                ): digest
                for digest in wave
            }
            for future, digest in _finish(futures):
                copied, resumed = future.result()
                done.add(digest)
                if copied:
                    summary.blobs_copied += 1
                    summary.bytes_copied += plan.sizes[digest]
                    summary.resumed += int(resumed)
                else:  # another copier got there first
                    summary.blobs_skipped += 1
                    summary.bytes_skipped += plan.sizes[digest]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return done


def _finish(
    futures: Mapping[Future[tuple[bool, bool]], str],
) -> Iterator[tuple[Future[tuple[bool, bool]], str]]:
    """Wait for every future, in slices (so an interruption is seen at once); on the first
    failure, cancel the ones not started, let the running ones end, and raise it."""
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, timeout=_WAIT_SLICE, return_when=FIRST_EXCEPTION)
            for future in finished:
                if future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
                yield future, futures[future]
    except BaseException:
        for future in pending:
            future.cancel()
        _drain(pending)
        raise


def _drain(pending: set[Future[tuple[bool, bool]]], grace: float = 30.0) -> None:
    """Give running copies up to ``grace`` seconds to end, so their writers save their state."""
    deadline = time.monotonic() + grace
    while pending and time.monotonic() < deadline:
        _done, pending = wait(pending, timeout=min(_WAIT_SLICE, deadline - time.monotonic()))


def copy(
    src: Store,
    dst: Store,
    names: Sequence[str] | None,
    *,
    shard: tuple[int, int] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: ProgressCallback | None = None,
) -> CopySummary:
    """Copy the images ``names`` (every blob and name of ``src`` when None) to ``dst``.

    Only what the destination lacks is copied (found by listing it); see the module's
    docstring for the order, resumption and sharding. NotFoundError, before anything is
    copied, if a name is not in the source; the first error of a blob's copy stops the copy
    (what was committed stays, and a rerun continues from there).
    """
    if concurrency < 1:
        raise InvalidArgumentError(f"concurrency must be at least 1, got {concurrency}")
    if shard is not None and not 0 <= shard[0] < shard[1]:
        raise InvalidArgumentError(f"shard must be (i, n) with 0 <= i < n, got {shard}")
    if names is not None and not names:
        raise InvalidArgumentError("no image names given (pass None to copy everything)")
    plan = _plan(src, names)
    summary = CopySummary(missing_in_source=plan.missing)
    have = dict(dst.list_blobs())
    todo: list[str] = []
    for digest, size in plan.sizes.items():
        if not in_shard(digest, shard):
            summary.blobs_other_shards += 1
        elif digest in have:
            summary.blobs_skipped += 1
            summary.bytes_skipped += size
        else:
            todo.append(digest)
    tally = _Tally(len(todo), sum(plan.sizes[d] for d in todo), progress)
    copied = _run_waves(src, dst, plan, todo, concurrency, tally, summary)
    _write_names(src, dst, plan, set(have) | copied, summary)
    return summary


def _write_names(
    src: Store, dst: Store, plan: _Plan, present: set[str], summary: CopySummary
) -> None:
    """Set, in one ``set_many``, every selected name whose closure is complete at ``dst``."""
    if not plan.targets:
        return
    source_blobs = set(plan.sizes)
    needed = {name: plan.closures[name] & source_blobs for name in plan.targets}
    if any(not blobs <= present for blobs in needed.values()):
        present = present | {digest for digest, _ in dst.list_blobs()}  # other shards' work
    existing = {item.name: item.target for item in names_of(dst).list()}
    ready: dict[str, Descriptor] = {}
    for name, target in plan.targets.items():
        if target.digest not in source_blobs:
            summary.names_skipped.append(name)
        elif not needed[name] <= present:
            summary.names_pending.append(name)
        elif _same_target(existing.get(name), target):
            summary.names_unchanged.append(name)
        else:
            ready[name] = target
    if ready:
        names_of(dst).set_many(ready)
        summary.names_written.extend(ready)


def _same_target(have: Descriptor | None, want: Descriptor) -> bool:
    return (
        have is not None
        and have.digest == want.digest
        and have.size == want.size
        and have.media_type == want.media_type
    )
