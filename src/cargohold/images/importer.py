"""Importing images from disk into a store: ``import_images(store, path, ...)``.

``path`` is an OCI image layout directory, an OCI archive (a tar of a layout, maybe gzipped) or
a docker-archive (``docker save``; see ``docker_archive``). The archive is read into a plan
first (every image, name and blob known, manifests checked) so that a malformed archive is
refused before anything is uploaded. Then:

* every blob goes in through ``write_blob`` with its expected digest and size, so the store
  checks each one as it commits it; ``concurrency`` blobs at once (layers and configs first,
  then each level of manifests and indexes once everything they name is in), so a manifest
  is never committed before what it names, and one slow layer does not hold up the others;
* a blob the store already has is not uploaded again (one ``info`` per blob);
* manifests and indexes get containerd's ``containerd.io/gc.ref.content.*`` labels
  (``graph.gc_labels``), merged into any labels they already have;
* names are written last, in one ``set_many``: from the archive (ref.name annotations,
  RepoTags) and ``names`` (only when the archive holds one image).

Layers are streamed from the archive, never read whole into memory; an interrupted import
(a failure, or Ctrl-C: blobs not started are dropped and the running ones get a bounded time
to stop and save their ingestion) resumes each blob's ingestion where it stopped when run
again (refs are ``import-<digest>``).
Imports that share blobs may run at once: one writes a shared blob while the others wait
for it (bounded by ``busy_wait``), which also covers a rerun that finds the lease of an
interrupted import's writer not yet expired.
"""

from __future__ import annotations

import io
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import InvalidArgumentError, NotFoundError, UnavailableError
from ..helpers import write_blob
from ..names import validate_name
from ..store import Store
from ..types import Descriptor
from . import graph
from .archive import ArchiveSource, open_source
from .docker_archive import read_docker_archive
from .oci_layout import read_oci_layout
from .plan import ImportPlan, PlannedBlob
from .pool import finish

__all__ = ["DEFAULT_CONCURRENCY", "ImportResult", "ImportedImage", "import_images", "read_plan"]

DEFAULT_CONCURRENCY = 4
"""Blobs written at once."""


@dataclass(frozen=True)
class ImportedImage:
    """An image the import stored: its root descriptor and the names now pointing at it."""

    target: Descriptor
    names: tuple[str, ...]


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    images: tuple[ImportedImage, ...]
    blobs_imported: int
    """Blobs written to the store."""
    blobs_skipped: int
    """Blobs the store already had."""
    bytes_imported: int
    """Bytes of the blobs written."""
    format: str
    """``oci`` or ``docker-archive``."""


def read_plan(source: ArchiveSource, *, base_name: str | None = None) -> tuple[ImportPlan, str]:
    """The import plan of an opened archive, and its format (``oci`` or ``docker-archive``).

    An archive with both an ``index.json`` and a ``manifest.json`` (newer ``docker save``)
    is read as the OCI layout it also is.
    """
    if source.has("index.json"):
        return read_oci_layout(source, base_name=base_name), "oci"
    if source.has("manifest.json"):
        return read_docker_archive(source), "docker-archive"
    raise InvalidArgumentError(
        f"{source.path} is neither an OCI image layout (index.json) nor a docker-archive "
        "(manifest.json)"
    )


def _add_names(plan: ImportPlan, names: Sequence[str]) -> None:
    if not names:
        return
    for name in names:
        validate_name(name)
    if len(plan.images) != 1:
        raise InvalidArgumentError(
            f"the archive holds {len(plan.images)} images; --name applies only to an archive "
            "of one image"
        )
    plan.add_image(plan.images[0].target, names)


def _store_blob(store: Store, source: ArchiveSource, blob: PlannedBlob, busy_wait: float) -> bool:
    """Write one blob unless the store has it; return whether it was written.

    While another import writes the same blob (its ref is taken: UnavailableError), wait for
    it, polling with a doubling backoff for at most ``busy_wait`` seconds: once the blob is
    there, it only needs its labels. A blob just found absent is opened without asking again.
    """
    desc = blob.desc
    labels: dict[str, str] = {}
    if blob.data is not None and graph.is_graph_type(desc.media_type):
        labels = graph.gc_labels(desc.media_type, blob.data)
    if not labels and _stored(store, desc.digest):
        return False
    deadline = time.monotonic() + busy_wait
    delay = 0.05
    while True:
        try:
            return _write(store, source, blob, labels, known_absent=not labels)
        except UnavailableError:
            if time.monotonic() + delay > deadline:
                raise
        time.sleep(random.uniform(delay / 2, delay))
        delay = min(delay * 2, 2.0)
        if not labels and _stored(store, desc.digest):
            return False


def _levels(plan: ImportPlan) -> list[list[PlannedBlob]]:
    """The plan's blobs in waves: layers and configs (and any other leaf), then manifests and
    indexes, each in the wave after the last of its children in the plan. A graph blob whose
    children are not known in memory goes after everything planned before it."""
    level: dict[str, int] = {}
    waves: list[list[PlannedBlob]] = []
    for blob in plan.blobs:  # children come first
        desc = blob.desc
        n = 0
        if graph.is_graph_type(desc.media_type):
            if blob.data is not None:
                kids = graph.children(desc.media_type, blob.data)
                below = [level.get(c.digest, 0) for c in kids]
            else:
                below = list(level.values())
            n = 1 + max(below, default=0)
        level[desc.digest] = n
        while len(waves) <= n:
            waves.append([])
        waves[n].append(blob)
    return [wave for wave in waves if wave]


def _store_blobs(
    store: Store, source: ArchiveSource, plan: ImportPlan, busy_wait: float, concurrency: int
) -> Iterator[tuple[PlannedBlob, bool]]:
    """Store every blob of ``plan``, wave after wave, ``concurrency`` at once; yield each blob
    with whether it was written, as they end."""
    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="cargohold-import")
    try:
        for wave in _levels(plan):
            futures: dict[int, Future[bool]] = {
                i: pool.submit(_store_blob, store, source, blob, busy_wait)
                for i, blob in enumerate(wave)
            }
            for i, written in finish(futures):
                yield wave[i], written
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _stored(store: Store, digest: str) -> bool:
    try:
        store.info(digest)
    except NotFoundError:
        return False
    return True


def _write(
    store: Store,
    source: ArchiveSource,
    blob: PlannedBlob,
    labels: dict[str, str],
    *,
    known_absent: bool,
) -> bool:
    desc = blob.desc
    ref = f"import-{desc.digest}"
    if blob.data is not None:
        result = write_blob(
            store,
            ref,
            io.BytesIO(blob.data),
            expected=desc.digest,
            size=desc.size,
            labels=labels,
            known_absent=known_absent,
        )
    else:
        assert blob.member is not None
        with source.open(blob.member) as stream:
            result = write_blob(
                store, ref, stream, expected=desc.digest, size=desc.size, known_absent=known_absent
            )
    return not result.existed


def import_images(
    store: Store,
    path: str | os.PathLike[str],
    *,
    names: Sequence[str] = (),
    base_name: str | None = None,
    progress: Callable[[Descriptor, bool], None] | None = None,
    busy_wait: float = 600.0,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> ImportResult:
    """Import every image at ``path`` into ``store`` and name it; return what was done.

        ``names``: more names for the image (the archive must hold exactly one). ``base_name``:
        the repository to put before a bare tag found as an OCI ref.name (``app`` makes ``1.0``
        into ``app:1.0``). ``progress(desc, written)`` is called after each blob. ``busy_wait``: how
    long to wait for a blob that another import is writing at the same time. ``concurrency``:
    blobs written at once.
    """
    if concurrency < 1:
        raise InvalidArgumentError(f"concurrency must be at least 1, got {concurrency}")
    if base_name is not None:
        validate_name(base_name)
        if any(c in base_name.rpartition("/")[2] for c in ":@"):
            raise InvalidArgumentError(f"base name {base_name!r} must have no tag or digest")
    with open_source(path) as source:
        plan, kind = read_plan(source, base_name=base_name)
        _add_names(plan, names)
        plan.check_names()
        imported = skipped = size = 0
        for blob, written in _store_blobs(store, source, plan, busy_wait, concurrency):
            if written:
                imported += 1
                size += blob.desc.size
            else:
                skipped += 1
            if progress is not None:
                progress(blob.desc, written)
    wanted = {name: image.target for image in plan.images for name in image.names}
    if wanted:
        store.names.set_many(wanted)
    images = tuple(ImportedImage(image.target, image.names) for image in plan.images)
    return ImportResult(images, imported, skipped, size, kind)
