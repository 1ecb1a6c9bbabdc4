"""Ingestions: writing a blob in parts, resumable anywhere, published create-only.

An ingestion is kept under ``ingest/<sha256(ref)>/`` (the keys come from ``layout.Layout``):

* ``lock``: the writer's lease (see ``locks``). A new ingestion's first record rides on it
  (the lease's payload, written by the same create-only put), so ``status`` and
  ``list_statuses`` see the ingestion from any process before it has a ``state``; an open that
  takes over the lapsed lease of a writer that died before saving state keeps that record.
* ``state``: one object holding the ingestion's record (JSON) and its *tail*, the buffered bytes
  not yet uploaded as a part (see ``state``). Written when the upload session starts, at
  ``close()``, as a checkpoint about every ``lease_timeout / 3`` seconds while parts are being
  uploaded, and when an existing ingestion restarts. Where both are present, ``state`` is the
  newer. A blob small enough for one put never writes it: open, write, commit costs the lease,
  one state read, the renewal before publishing, the put and the lease's release.
* an upload session (driver multipart upload) holding the parts. Its target is the blob key
  itself when the expected digest is known up front, else ``ingest/<h>/data``, whose bytes are
  copied to the blob key at commit. A *hint* (a digest the bytes are likely to have, such as
  the one a containerd ref names) also targets the blob key, without binding the commit: if the
  bytes turn out to have another digest, the commit fails once with FailedPrecondition and the
  ingestion restarts from zero without the hint, since parts uploaded for one key can never be
  completed under another.

Modules, each with one job:

* ``context``: ``IngestContext``, what the store passes down (driver, executor, leases, labels,
  layout, settings, the writer registry). Nothing here imports the store.
* ``registry``: the writers of this process by ref (a leaf lock, bounded waits).
* ``state``: the durable record, its encoding and its invariants.
* ``sessions``: saving, loading, dropping and removing an ingestion's state and session.
* ``manager``: opening (or resuming) a writer, statuses, abort.
* ``partbuffer``, ``uploader``: the part being filled; the parts in flight (bounded).
* ``writer``: buffering, checkpoints, restarts, close, status snapshots.
* ``commit``: verifying and publishing a blob, create-only.
"""

from __future__ import annotations

from .context import IngestContext
from .registry import WriterRegistry
from .state import IngestRecord, decode_state, encode_state, utcnow
from .writer import Writer

__all__ = [
    "IngestContext",
    "IngestRecord",
    "Writer",
    "WriterRegistry",
    "decode_state",
    "encode_state",
    "utcnow",
]
