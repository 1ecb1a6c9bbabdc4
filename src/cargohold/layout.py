"""Where a store keeps things under its prefix: every key the store, its ingestions and its
image names use is built here, once.

The root of a store is an OCI image layout (``oci-layout``, ``index.json``, ``blobs/``) with two
folders of cargohold's own next to it (see docs/architecture.md):

* ``blobs/<alg>/<hex>``: committed blobs; the bytes under a digest key always hash to it.
* ``blobs/<alg>/<hex>.labels``: label records, for drivers that keep them in sidecars.
* ``ingest/<sha256(ref)>/{state,lock,data}``: ingestions in progress.
* ``index.json`` and ``oci-layout``: image names (see ``names``).

The containerd plugin adds ``holders/`` (``plugin/ownership.py``) and ``nodes/``
(``plugin/nodelease.py``), whose keys it builds itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .digests import Digest, parse_digest
from .errors import InvalidArgumentError

__all__ = ["SIDECAR_SUFFIX", "Layout"]

SIDECAR_SUFFIX = ".labels"


@dataclass(frozen=True)
class Layout:
    """The keys of one store, under ``prefix`` (no leading or trailing ``/``; may be empty)."""

    prefix: str = ""

    @property
    def root(self) -> str:
        """The prefix with a trailing ``/``, or ``""``: every key starts with it."""
        return f"{self.prefix}/" if self.prefix else ""

    @property
    def blobs(self) -> str:
        """The listing prefix of committed blobs (and their label sidecars)."""
        return f"{self.root}blobs/"

    def blob_key(self, digest: Digest) -> str:
        """The key of a committed blob."""
        return f"{self.blobs}{digest.algorithm}/{digest.hex}"

    def sidecar_key(self, digest: Digest) -> str:
        """The key of a blob's label sidecar (drivers without room for labels in metadata)."""
        return self.blob_key(digest) + SIDECAR_SUFFIX

    def digest_of(self, key: str) -> Digest | None:
        """The digest a blob key stands for; None for any other key (sidecars included)."""
        if not key.startswith(self.blobs) or key.endswith(SIDECAR_SUFFIX):
            return None
        try:
            return parse_digest(key[len(self.blobs) :].replace("/", ":", 1))
        except InvalidArgumentError:
            return None

    @property
    def ingestions(self) -> str:
        """The listing prefix of every ingestion's folder."""
        return f"{self.root}ingest/"

    def ingest_dir(self, ref: str) -> str:
        """The folder of ingestion ``ref`` (its state, lock and staged data)."""
        return f"{self.ingestions}{hashlib.sha256(ref.encode()).hexdigest()}"

    def state_key(self, ref: str) -> str:
        """Ingestion ``ref``'s state record."""
        return f"{self.ingest_dir(ref)}/state"

    def lock_key(self, ref: str) -> str:
        """Ingestion ``ref``'s lease."""
        return f"{self.ingest_dir(ref)}/lock"

    def staging_key(self, ref: str) -> str:
        """Where ingestion ``ref`` assembles bytes whose digest is not known in advance."""
        return f"{self.ingest_dir(ref)}/data"

    @property
    def index_key(self) -> str:
        """The OCI layout's ``index.json``: the store's image names."""
        return f"{self.root}index.json"

    @property
    def oci_layout_key(self) -> str:
        """The OCI layout's marker file, ``oci-layout``."""
        return f"{self.root}oci-layout"
