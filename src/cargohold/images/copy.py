"""Copy images (or a whole store) from one store to another, whatever their drivers.

``copy(src, dst, names)`` copies the blobs of the named images (the graph closure of each name
on the source), or with ``names=None`` every blob of the source and every name, then writes the
names. How it goes:

1. The destination is *listed* (``Store.list_blobs``): what it holds is never asked blob by
   blob, so a rerun with nothing left to copy costs the destination a listing and a read of
   its names.
2. The blobs it lacks are copied by ``transfer.Transfer``: all at once as far as
   ``concurrency`` allows, each streamed from a source ``reader_at`` into a destination writer
   that expects its digest (checked at commit: nothing wrong is ever published), with the
   source's labels. A manifest or index streams its bytes, then commits only once its children
   are committed: a copy killed at any moment never leaves a parent whose children are
   missing. Memory stays bounded whatever the blob sizes.
3. A blob's ingestion ref is ``copy-<digest>``: a blob whose copy was interrupted resumes from
   the destination's ingestion state where the driver allows it.
4. Names are written last, together, in one ``set_many``, and only names whose whole closure
   is at the destination.
5. A copy killed between a blob's commit and the removal of its ingestion leaves a
   ``copy-<digest>`` ingestion for a blob the destination holds. Every run ends by listing the
   destination's ingestions (one more listing) and aborting those, unless another copier
   still holds one (its own commit then finds the blob).

Sharding (``shard=(i, n)``): the leaves (layers and configs, nearly all the bytes) are split by
digest: shard ``i`` copies those whose digest, as a number, is ``i`` modulo ``n``, so the shards
are disjoint and together are the whole. Manifests, indexes and names need the leaves of every
shard; a shard copies them (and writes the names) only once everything under them is at the
destination, listing it again at the end to see what the other shards did. Whatever is still
waiting is reported (``blobs_pending``, ``names_pending``), and whichever shard finishes last —
or any later run — completes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ..digests import parse_digest
from ..errors import AlreadyExistsError, InvalidArgumentError, NotFoundError, UnavailableError
from ..names import NameListing
from ..store import Store
from ..types import Descriptor
from . import graph
from .closure import explore, heights
from .transfer import CopyProgress, ProgressCallback, Transfer, TransferResult, copy_ref

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


@dataclass
class CopySummary:
    """What a copy did.

    ``blobs_copied``/``bytes_copied``: written to the destination by this run (``resumed``
    of them continued an interrupted copy). ``blobs_skipped``/``bytes_skipped``: already there.
    ``blobs_other_shards``: leaves left to the other shards. ``blobs_pending``: manifests and
    indexes not copied yet, because blobs under them are not at the destination yet (sharding)
    or another copier holds their ingestion right now. ``names_written``: names set at the
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
    blobs_pending: int = 0
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
            "blobs_pending": self.blobs_pending,
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


@dataclass
class _Plan:
    """What to copy: every wanted blob with its size, height and (for --all) labels."""

    sizes: dict[str, int]
    edges: dict[str, list[str]]
    heights: dict[str, int]
    labels: dict[str, Mapping[str, str]] | None
    closures: dict[str, set[str]]
    targets: dict[str, Descriptor]
    missing: list[str]


def _plan(src: Store, names: Sequence[str] | None) -> _Plan:
    wanted_names = src.names
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
        reached: set[str] = set().union(*found.closures.values())
        blobs = reached & set(present)
    edges = {d: [k for k in kids if k in blobs] for d, kids in edges.items() if d in blobs}
    edges = {d: kids for d, kids in edges.items() if kids}
    ranked = heights(edges)
    return _Plan(
        sizes={d: present[d] for d in blobs},
        edges=edges,
        heights={d: ranked.get(d, 0) for d in blobs},
        labels=labels,
        closures={name: found.closures[t.digest] for name, t in targets.items()},
        targets=targets,
        missing=sorted(found.absent),
    )


def _leaves_under(edges: Mapping[str, list[str]], root: str) -> set[str]:
    """The leaves (blobs without children) reachable from ``root``."""
    found: set[str] = set()
    seen: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        kids = edges.get(node)
        if kids:
            stack.extend(kids)
        else:
            found.add(node)
    return found


class _Run:
    """One ``copy``: the plan, what the destination holds, the summary being filled in."""

    def __init__(self, src: Store, dst: Store, plan: _Plan, concurrency: int) -> None:
        self.src, self.dst, self.plan = src, dst, plan
        self.summary = CopySummary(missing_in_source=plan.missing)
        self.transfer = Transfer(src, dst, plan.sizes, plan.labels, concurrency)
        self.present = {digest for digest, _ in dst.list_blobs()}
        self._relisted = False

    def relist(self) -> None:
        """List the destination again (once): other shards may have added blobs meanwhile."""
        if not self._relisted:
            self._relisted = True
            self.present |= {digest for digest, _ in self.dst.list_blobs()}

    def transfer_all(self, digests: list[str], progress: ProgressCallback | None) -> None:
        if not digests:
            return
        result: TransferResult = self.transfer.run(
            digests, self.plan.edges, self.plan.heights, progress
        )
        summary, sizes = self.summary, self.plan.sizes
        summary.blobs_copied += len(result.copied)
        summary.bytes_copied += sum(sizes[d] for d in result.copied)
        summary.blobs_skipped += len(result.existed)
        summary.bytes_skipped += sum(sizes[d] for d in result.existed)
        summary.blobs_pending += len(result.busy)
        summary.resumed += result.resumed
        self.present |= result.copied | result.existed


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
    # The destination's names are read while the blobs copy (they are only compared with
    # what is written at the end; set_many itself is a conditional read-modify-write).
    ahead = ThreadPoolExecutor(1, thread_name_prefix="cargohold-copy-names")
    try:
        existing: Future[NameListing] | None = None
        if plan.targets:
            existing = ahead.submit(_names_at, dst)
        run = _Run(src, dst, plan, concurrency)
        _copy_blobs(run, shard, progress)
        # The tidy-up of leftover ingestions and the names are independent: side by side.
        tidy = ahead.submit(_drop_finished_ingestions, run)
        try:
            if existing is not None:
                _write_names(run, existing.result())
        finally:
            wait([tidy])  # each of its requests is bounded by the driver's own timeouts
        tidy.result()
    finally:
        ahead.shutdown(wait=False, cancel_futures=True)
    return run.summary


def _copy_blobs(
    run: _Run, shard: tuple[int, int] | None, progress: ProgressCallback | None
) -> None:
    plan, summary = run.plan, run.summary
    missing = [d for d in plan.sizes if d not in run.present]
    for digest in plan.sizes:
        if digest in run.present:
            summary.blobs_skipped += 1
            summary.bytes_skipped += plan.sizes[digest]
    if shard is None:
        run.transfer_all(missing, progress)
        return
    mine: list[str] = []
    nodes: list[str] = []
    for digest in missing:
        if plan.edges.get(digest):
            nodes.append(digest)
        elif in_shard(digest, shard):
            mine.append(digest)
        else:
            summary.blobs_other_shards += 1
    run.transfer_all(mine, progress)
    under = {node: _leaves_under(plan.edges, node) for node in nodes}
    if any(not leaves <= run.present for leaves in under.values()):
        run.relist()
    ready = [node for node in nodes if under[node] <= run.present]
    summary.blobs_pending += len(nodes) - len(ready)
    run.transfer_all([d for d in ready if d not in run.present], progress)


_COPY_REFS = f"ref~=/^{copy_ref('')}/"


def _drop_finished_ingestions(run: _Run) -> None:
    """Abort the ``copy-<digest>`` ingestions left at ``dst`` for blobs it now holds."""
    prefix = copy_ref("")
    for status in run.dst.list_statuses(_COPY_REFS):
        if status.ref.removeprefix(prefix) not in run.present:
            continue
        try:
            # Holding the ref first tells a leftover from a live copier's ingestion.
            run.dst.writer(status.ref)
        except (UnavailableError, NotFoundError, AlreadyExistsError):
            continue
        with contextlib.suppress(NotFoundError):
            run.dst.abort(status.ref)  # also lets go of the writer just opened


def _names_at(dst: Store) -> NameListing:
    """The destination's names; a store without ``index.json`` gets its ``oci-layout`` marker
    now, while the blobs copy, so that writing the names at the end is one request."""
    listing = dst.names.listing()
    if not listing.index_exists:
        dst.names.ensure_layout()
    return listing


def _write_names(run: _Run, listing: NameListing) -> None:
    """Set, in one ``set_many``, every selected name whose closure is complete at ``dst``."""
    plan, summary = run.plan, run.summary
    existing = {item.name: item.target for item in listing.names}
    source_blobs = set(plan.sizes)
    needed = {name: plan.closures[name] & source_blobs for name in plan.targets}
    if any(not blobs <= run.present for blobs in needed.values()):
        run.relist()
    ready: dict[str, Descriptor] = {}
    for name, target in plan.targets.items():
        if target.digest not in source_blobs:
            summary.names_skipped.append(name)
        elif not needed[name] <= run.present:
            summary.names_pending.append(name)
        elif _same_target(existing.get(name), target):
            summary.names_unchanged.append(name)
        else:
            ready[name] = target
    if ready:
        # Every target was just listed or committed at dst: its size need not be asked again.
        known = {t.digest: plan.sizes[t.digest] for t in ready.values()}
        run.dst.names.set_many(ready, known=known, new_index=not listing.index_exists)
        summary.names_written.extend(ready)


def _same_target(have: Descriptor | None, want: Descriptor) -> bool:
    return (
        have is not None
        and have.digest == want.digest
        and have.size == want.size
        and have.media_type == want.media_type
    )
