"""Exporting named images from a store to disk: ``export(store, names, path)``.

``path`` ending in ``.tar`` gets an OCI archive (a tar of an OCI image layout); any other path
an OCI image layout directory, which must not exist yet or be empty. Either way the result has
``oci-layout``, ``index.json`` (one entry per name, annotated with the full name as
``org.opencontainers.image.ref.name`` and ``io.containerd.image.name``, as the store's own
index is; see ``cargohold.names``) and every blob the images reach under
``blobs/<alg>/<hex>``, byte for byte as the store holds it. Each blob's digest is checked as it
is read out of the store (DataLossError on a mismatch).

Nothing is left half-written: a directory's blobs are each written under a temporary name and
renamed, ``index.json`` comes last; an archive is written under a temporary name next to
``path`` and renamed into place at the end.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..blob_reader import open_blob
from ..errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from ..helpers import read_blob
from ..names import INDEX_MEDIA_TYPE, OCI_LAYOUT, ImageName, index_entry
from ..store import Store
from ..types import Descriptor
from . import graph
from .oci_layout import blob_path

__all__ = ["ExportResult", "export"]


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: str
    images: tuple[ImageName, ...]
    blobs: int
    bytes: int
    archive: bool


def _index(images: Sequence[ImageName]) -> bytes:
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [index_entry(image.name, image.target) for image in images],
    }
    return json.dumps(index, indent=2).encode() + b"\n"


def _closure(store: Store, images: Sequence[ImageName]) -> list[Descriptor]:
    found: dict[str, Descriptor] = {}
    for image in images:
        target = image.target
        root = Descriptor(target.media_type, target.digest, target.size)
        try:
            for desc in graph.walk(store, root):
                found.setdefault(desc.digest, desc)
        except NotFoundError as exc:
            raise NotFoundError(f"image {image.name!r} is incomplete in the store: {exc}") from exc
    return list(found.values())


def export(store: Store, names: Sequence[str], path: str | os.PathLike[str]) -> ExportResult:
    """Write the images named ``names`` to ``path`` (an OCI archive if it ends in ``.tar``,
    else an OCI layout directory); NotFoundError if a name or a blob is missing."""
    if not names:
        raise InvalidArgumentError("name at least one image to export")
    store_names = store.names
    images = tuple(store_names.get(name) for name in dict.fromkeys(names))
    blobs = _closure(store, images)
    target = Path(path)
    archive = target.name.endswith(".tar")
    if archive:
        _write_archive(store, images, blobs, target)
    else:
        _write_directory(store, images, blobs, target)
    return ExportResult(str(target), images, len(blobs), sum(b.size for b in blobs), archive)


def _check_missing(store: Store, blobs: Sequence[Descriptor]) -> None:
    """Fail before writing anything when the store lacks a blob of the images."""
    for desc in blobs:
        try:
            store.info(desc.digest)
        except NotFoundError as exc:
            raise NotFoundError(
                f"cannot export: content {desc.digest} is not in the store"
            ) from exc


def _write_directory(
    store: Store, images: Sequence[ImageName], blobs: Sequence[Descriptor], root: Path
) -> None:
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise AlreadyExistsError(f"{root} exists and is not an empty directory")
    _check_missing(store, blobs)
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_bytes(OCI_LAYOUT)
    for desc in blobs:
        dest = root / blob_path(desc.digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        read_blob(store, desc.digest, dest)
    temporary = root / f".index.json.{uuid.uuid4().hex[:12]}"
    temporary.write_bytes(_index(images))
    os.replace(temporary, root / "index.json")


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    return info


def _write_archive(
    store: Store, images: Sequence[ImageName], blobs: Sequence[Descriptor], path: Path
) -> None:
    if path.exists() and not path.is_file():
        raise AlreadyExistsError(f"{path} exists and is not a file")
    _check_missing(store, blobs)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        with tarfile.open(temporary, "x", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_member("oci-layout", len(OCI_LAYOUT)), io.BytesIO(OCI_LAYOUT))
            for desc in blobs:
                with open_blob(store, desc.digest) as reader:
                    tar.addfile(_member(blob_path(desc.digest), reader.size), reader)
            index = _index(images)
            tar.addfile(_member("index.json", len(index)), io.BytesIO(index))
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            temporary.unlink()
        raise
