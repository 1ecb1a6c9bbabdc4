"""Ending an ingestion with a commit: verify, publish the blob create-only, clean up.

A blob is published in one of three ways, none of which ever makes partial bytes visible under
a digest key: a single create-only put (an ingestion smaller than a part, with its labels inline
where the driver keeps them in metadata), completing the upload session (create-only) when it
targets the blob key itself, or completing it at the staging key and copying (create-only) from
there. A hint that turns out wrong restarts the ingestion (see ``writer``).

These are functions over the pieces the writer hands them; the writer owns the ingestion's
state and its transitions (``Writer._commit``), so nothing here imports the writer.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..digests import parse_digest
from ..drivers.base import CREATE_ONLY, Part
from ..errors import AlreadyExistsError, FailedPreconditionError, InvalidArgumentError
from ..labels import LabelRecord
from .context import IngestContext
from .state import IngestRecord, utcnow

__all__ = [
    "check_commit",
    "complete_session",
    "copy_staged",
    "publish_single",
]


def check_commit(record: IngestRecord, actual: str, size: int, expected: str) -> None:
    """Raise unless bytes of digest ``actual`` may be committed as ``size`` / ``expected``."""
    if not isinstance(size, int) or size < 0:
        raise InvalidArgumentError(f"commit size must be a non-negative int, got {size!r}")
    want = expected or record.expected
    if want:
        parse_digest(want)
    if size > 0 and size != record.offset:
        raise FailedPreconditionError(f"unexpected commit size {record.offset}, expected {size}")
    if want and want != actual:
        raise FailedPreconditionError(f"unexpected commit digest {actual}, expected {want}")
    if record.expected and record.expected != actual:
        # The upload session was opened under the expected digest's key: those parts can
        # never be published under another digest. truncate(0) starts over.
        raise FailedPreconditionError(
            f"unexpected commit digest {actual}: the ingestion was started for {record.expected}"
        )


def publish_single(
    ctx: IngestContext, blob_key: str, data: bytes, record: LabelRecord | None
) -> tuple[str, bool]:
    """Put ``data`` at ``blob_key`` in one create-only put (AlreadyExistsError if a blob is
    there). Returns the blob's etag and whether ``record`` went in with the bytes (a driver
    that keeps labels inline), so that no separate label write is needed."""
    labels = ctx.labels
    metadata = labels.commit_metadata(utcnow(), record)
    etag = ctx.driver.put(blob_key, data, precondition=CREATE_ONLY, metadata=metadata)
    return etag, record is not None and labels.inline_metadata(record) is not None


def complete_session(
    ctx: IngestContext,
    key: str,
    upload_id: str,
    parts: Sequence[Part],
    tail: bytes,
    tail_offset: int,
    *,
    create_only: bool,
) -> str:
    """Upload ``tail`` (if any, or if there are no parts at all) as the last part, then
    complete the session at ``key`` (create-only when ``key`` is the blob key). Returns the
    completed object's etag."""
    driver = ctx.driver
    every = list(parts)
    if tail or not every:
        number = len(every) + 1
        every.append(driver.upload_part_positioned(key, upload_id, number, tail_offset, tail))
    condition = CREATE_ONLY if create_only else None
    return driver.complete_upload(key, upload_id, every, precondition=condition)


def copy_staged(ctx: IngestContext, staging_key: str, blob_key: str) -> str:
    """Copy the assembled bytes to ``blob_key`` create-only, then delete them (also when a
    blob is there already: AlreadyExistsError). Returns the blob's etag."""
    driver = ctx.driver
    try:
        etag = driver.copy(staging_key, blob_key, precondition=CREATE_ONLY)
    except AlreadyExistsError:
        driver.delete(staging_key)
        raise
    driver.delete(staging_key)
    return etag
