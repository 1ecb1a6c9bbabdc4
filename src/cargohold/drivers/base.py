"""The driver protocol: what an object store must offer to hold a cargohold store.

A driver moves bytes and objects and nothing else. It knows nothing of digests, labels, refs,
leases or filters; the store above it does all of that once, for every driver.

Keys are ``/``-separated strings chosen by the store (the store adds its own prefix). Every
method is safe to call from several threads at once.

Errors: a driver raises only cargohold errors, translated from its SDK by one table
(``raise ... from exc``):

* ``NotFoundError``: the object or upload session does not exist.
* ``AlreadyExistsError``: a create-only write (``precondition=CREATE_ONLY``) found the key taken.
* ``FailedPreconditionError``: an ``IfMatch`` etag did not match (or the object is gone), or a
  part given to ``complete_upload`` is missing or has another etag.
* ``InvalidArgumentError``: the service rejected the request as malformed.
* ``UnavailableError``: the service could not be reached after the SDK's retries.
* ``ServiceError``: any other permanent failure.

Preconditions: a conditional write takes one ``precondition``, never two, with one meaning on
every driver:

* ``CREATE_ONLY`` (``put``, ``copy``, ``complete_upload``): write only if no object has the key,
  else ``AlreadyExistsError`` and nothing is written.
* ``IfMatch(etag)`` (``put``, ``set_metadata``, ``delete``): write only while the object's current
  etag is ``etag``, else ``FailedPreconditionError``, also when the object is gone. The one
  exception is ``delete``: an object that is already gone is what the delete asked for, so it is
  not an error (an object present with another etag is).

Upload sessions follow S3 multipart uploads: a session is started for the key that the
completed object will have; parts are numbered from 1; every part but the last must be at
least ``limits.min_part_size``; ``complete_upload`` assembles exactly the parts it is given, in
order, and fails unless each one is present with the given etag. That etag check is what fences
off a stale writer that still uploads parts for a session another writer took over. Azure staged
blocks and GCS composed objects map onto the same calls (see docs/architecture.md).
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol, TypeAlias, runtime_checkable

__all__ = [
    "CREATE_ONLY",
    "CreateOnly",
    "Driver",
    "DriverLimits",
    "IfMatch",
    "MetadataWriter",
    "ObjectInfo",
    "Part",
    "PositionalParts",
    "Precondition",
    "UploadInfo",
]

MiB = 1024 * 1024


class CreateOnly(enum.Enum):
    """Precondition: write only if no object has the key (else ``AlreadyExistsError``).

    It has a single member, ``CREATE_ONLY``; test with ``precondition is CREATE_ONLY``.
    """

    CREATE_ONLY = "create-only"

    def __repr__(self) -> str:
        return "CREATE_ONLY"


CREATE_ONLY: Final = CreateOnly.CREATE_ONLY
"""The create-only precondition."""


@dataclass(frozen=True)
class IfMatch:
    """Precondition: write only while the object's current etag is ``etag``.

    Otherwise (another etag, or no object) the write raises ``FailedPreconditionError``.
    """

    etag: str


Precondition: TypeAlias = CreateOnly | IfMatch
"""What ``put`` accepts: create-only, or replace-if-current."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object as a head or a listing sees it."""

    key: str
    size: int
    modified: datetime
    """Time of the last write, timezone-aware UTC (service clock)."""
    etag: str
    """Opaque version token; ``put(..., precondition=IfMatch(etag))`` succeeds only while it is
    current."""
    metadata: Mapping[str, str] | None = None
    """User metadata; ``None`` when a listing did not carry it."""


@dataclass(frozen=True)
class Part:
    """One uploaded part of an upload session."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class UploadInfo:
    """An upload session that was started and neither completed nor aborted."""

    key: str
    upload_id: str
    initiated: datetime | None = None


@dataclass(frozen=True)
class DriverLimits:
    """What the service allows; the store sizes its parts and metadata by these."""

    min_part_size: int = 5 * MiB
    """Every part of a session but the last must be at least this large."""
    max_part_size: int = 5 * 1024 * MiB
    max_parts: int = 10_000
    default_part_size: int = 8 * MiB
    default_concurrency: int = 4
    metadata_bytes: int = 0
    """Room for user metadata on one object (keys + values); 0 when there is none."""
    metadata_mutable: bool = False
    """``set_metadata`` replaces an object's metadata without rewriting its bytes."""
    metadata_in_listing: bool = False
    """``list(..., metadata=True)`` carries each object's metadata."""
    read_streams: int = 0
    """Parallel ranged gets for one large read; 0 = the store's upload concurrency."""
    abort_removes_parts: bool = True
    """``abort_upload`` removes the parts at once (Azure's staged blocks only expire)."""


class Driver(Protocol):
    """Object storage as the store needs it."""

    @property
    def limits(self) -> DriverLimits:
        """The service's limits and capabilities."""
        ...

    def put(
        self,
        key: str,
        data: bytes,
        *,
        precondition: Precondition | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """Write a whole object; return its etag.

        ``CREATE_ONLY``: ``AlreadyExistsError`` if the key exists. ``IfMatch(etag)``: replace only
        if the current etag equals it, else ``FailedPreconditionError`` (also when it is gone).
        Metadata keys are lowercase ``[a-z0-9_]``, values printable ASCII.
        """
        ...

    def get(self, key: str) -> bytes:
        """Read a whole (small) object."""
        ...

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Read up to ``length`` bytes from ``offset``; short at the end, ``b""`` past it."""
        ...

    def head(self, key: str) -> ObjectInfo:
        """An object's size, time, etag and metadata."""
        ...

    def list(self, prefix: str, *, metadata: bool = False) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in lexicographic key order.

        Pages through the service's listing lazily. With ``metadata=True`` a driver whose
        ``limits.metadata_in_listing`` is set fills ``ObjectInfo.metadata``.
        """
        ...

    def delete(self, key: str, *, precondition: IfMatch | None = None) -> None:
        """Delete an object; a missing object is not an error.

        With ``IfMatch(etag)``, delete only if the current etag equals it (an object that exists
        with another etag raises ``FailedPreconditionError``; one that is gone is not an error).
        """
        ...

    def copy(self, src: str, dst: str, *, precondition: CreateOnly | None = None) -> str:
        """Server-side copy of any size; return the new etag.

        ``CREATE_ONLY``: ``AlreadyExistsError`` if ``dst`` exists.
        """
        ...

    def start_upload(self, key: str) -> str:
        """Start an upload session for ``key``; return its id."""
        ...

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        """Upload (or replace) part ``number`` (1-based) of a session."""
        ...

    def list_parts(self, key: str, upload_id: str) -> builtins.list[Part]:
        """The parts a session holds, by number; ``NotFoundError`` if the session is gone."""
        ...

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[Part],
        *,
        precondition: CreateOnly | None = None,
    ) -> str:
        """Assemble exactly ``parts`` (in order) into the object ``key``; return its etag.

        Ends the session. ``AlreadyExistsError`` with ``CREATE_ONLY`` when the key exists;
        ``FailedPreconditionError`` if a part is missing or its etag differs.
        ``parts`` may be empty (a 0-byte object).
        """
        ...

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Drop a session and its parts; an unknown session is not an error."""
        ...

    def list_uploads(self, prefix: str) -> Iterator[UploadInfo]:
        """Sessions whose key starts with ``prefix`` that are neither completed nor aborted."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...


@runtime_checkable
class MetadataWriter(Protocol):
    """Optional capability: replace an object's metadata without rewriting its bytes."""

    def set_metadata(
        self, key: str, metadata: Mapping[str, str], *, precondition: IfMatch | None = None
    ) -> str:
        """Replace all user metadata of ``key``; return the new etag.

        ``IfMatch(etag)``: only while the current etag equals it, else
        ``FailedPreconditionError`` (also when it is gone).
        """
        ...


@runtime_checkable
class PositionalParts(Protocol):
    """Optional capability: a part is written at its byte offset in the session's object.

    For stores where assembling parts would mean copying them (a local directory), the store
    passes each part's offset so that completing a session needs no copy. Sessions whose parts
    all came through ``upload_part_at`` complete exactly as with ``upload_part``.
    """

    def upload_part_at(
        self, key: str, upload_id: str, number: int, offset: int, data: bytes
    ) -> Part:
        """Upload (or replace) part ``number``, which starts at byte ``offset`` of the object."""
        ...
