"""What an import will do, decided before any byte is uploaded: the images found, their names,
and every blob in an order where children come before the manifests and indexes naming them.

The readers (``oci_layout``, ``docker_archive``) build an ``ImportPlan`` from an archive; the
``importer`` carries it out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

from ..errors import InvalidArgumentError
from ..types import Descriptor

__all__ = ["ImportPlan", "PlannedBlob", "PlannedImage", "hash_stream"]

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PlannedBlob:
    """One blob to store: its descriptor, and either its bytes (small JSON documents, read or
    built in memory) or the archive member holding them."""

    desc: Descriptor
    member: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class PlannedImage:
    """One image of the archive: the manifest or index at its root and the names it gets."""

    target: Descriptor
    names: tuple[str, ...]


@dataclass
class ImportPlan:
    """The images of an archive and their blobs (children first, each digest once)."""

    images: list[PlannedImage] = field(default_factory=list)
    blobs: list[PlannedBlob] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)

    def add_blob(self, blob: PlannedBlob) -> None:
        """Add a blob unless one with its digest is planned already."""
        if blob.desc.digest not in self._seen:
            self._seen.add(blob.desc.digest)
            self.blobs.append(blob)

    def has_blob(self, digest: str) -> bool:
        """Whether a blob of this digest is planned."""
        return digest in self._seen

    def add_image(self, target: Descriptor, names: Iterable[str]) -> None:
        """Add an image, or more names to an image already planned with the same root."""
        wanted = tuple(dict.fromkeys(names))
        for i, image in enumerate(self.images):
            if image.target.digest == target.digest:
                merged = tuple(dict.fromkeys((*image.names, *wanted)))
                self.images[i] = PlannedImage(image.target, merged)
                return
        self.images.append(PlannedImage(target, wanted))

    def check_names(self) -> None:
        """InvalidArgumentError when one name is given to two different images."""
        owner: dict[str, str] = {}
        for image in self.images:
            for name in image.names:
                other = owner.setdefault(name, image.target.digest)
                if other != image.target.digest:
                    raise InvalidArgumentError(
                        f"the name {name!r} is given to two images ({other} and "
                        f"{image.target.digest})"
                    )


def hash_stream(stream: IO[bytes], algorithm: str = "sha256") -> tuple[str, int, bytes]:
    """Digest, size and first 8 bytes of a stream, read in chunks to its end."""
    hasher = hashlib.new(algorithm)
    size = 0
    head = b""
    while chunk := stream.read(_CHUNK):
        if len(head) < 8:
            head = (head + chunk)[:8]
        hasher.update(chunk)
        size += len(chunk)
    return f"{algorithm}:{hasher.hexdigest()}", size, head
