"""Ending an ingestion with a commit: verify, then publish the blob create-only.

A blob is published in one of three ways, none of which ever makes partial bytes visible under
a digest key: a single create-only put (an ingestion smaller than a part, with its labels inline
where the driver keeps them in metadata), completing the upload session (create-only) when it
targets the blob key itself, or completing it at the staging key and copying (create-only) from
there. A hint that turns out wrong restarts the ingestion (see ``writer``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..digests import parse_digest
from ..drivers.base import CREATE_ONLY
from ..errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from ..labels import LabelRecord, validate_labels
from ..locks import Lease
from . import sessions
from .context import IngestContext
from .partbuffer import PartBuffer
from .state import IngestRecord, utcnow
from .uploader import PartUploader

if TYPE_CHECKING:
    from ..digests import Hasher

__all__ = ["Committer"]


class Committer:
    """The commit half of ``Writer`` (which inherits it); it runs under the writer's lock."""

    _ctx: IngestContext
    _ref: str
    _lease: Lease
    _record: IngestRecord
    _buffer: PartBuffer
    _hasher: Hasher
    _uploads: PartUploader
    _torn: str | None
    _closed: bool

    if TYPE_CHECKING:

        def _restart(self, *, drop_hint: bool = False) -> None: ...

    def _commit(self, size: int, expected: str, labels: dict[str, str] | None) -> None:
        checked_labels = validate_labels(labels)
        if not isinstance(size, int) or size < 0:
            raise InvalidArgumentError(f"commit size must be a non-negative int, got {size!r}")
        want = expected or self._record.expected
        if want:
            parse_digest(want)
        actual = self._hasher.digest()
        if size > 0 and size != self._record.offset:
            raise FailedPreconditionError(
                f"unexpected commit size {self._record.offset}, expected {size}"
            )
        if want and want != actual:
            raise FailedPreconditionError(f"unexpected commit digest {actual}, expected {want}")
        if self._record.expected and self._record.expected != actual:
            # The upload session was opened under the expected digest's key: those parts can
            # never be published under another digest. truncate(0) starts over.
            raise FailedPreconditionError(
                f"unexpected commit digest {actual}: the ingestion was started for "
                f"{self._record.expected}"
            )
        ctx = self._ctx
        ctx.leases.renew(self._lease)
        blob_key = ctx.layout.blob_key(parse_digest(actual))
        if sessions.blob_exists(ctx, blob_key):
            self._remove()
            raise AlreadyExistsError(f"content {actual} already exists")
        if self._record.hint and self._record.hint != actual and not self._record.expected:
            self._drop_wrong_hint(actual)
        now = utcnow()
        record = LabelRecord(now, now, checked_labels) if checked_labels else None
        try:
            labelled = self._publish(blob_key, record)
        except AlreadyExistsError:
            self._remove()
            raise
        if record is not None and not labelled:
            ctx.labels.write(ctx.driver.head(blob_key), record)
        self._remove()

    def _drop_wrong_hint(self, actual: str) -> None:
        """The bytes do not have the hinted digest. Parts uploaded for the hint's key can never
        be completed under another key, so restart without the hint (the retry stages) and
        fail this commit. Without a session (a blob under one part) nothing is lost: the hint
        is only dropped."""
        hint = self._record.hint
        hinted_key = self._ctx.layout.blob_key(parse_digest(hint))
        if self._record.upload_id is None or self._record.upload_key != hinted_key:
            self._record.hint = ""
            return
        self._restart(drop_hint=True)
        raise FailedPreconditionError(
            f"ingestion {self._ref!r} has digest {actual}, not {hint} as its ref suggested; "
            "it was restarted from offset 0: write it again"
        )

    def _publish(self, blob_key: str, record: LabelRecord | None) -> bool:
        """Put the bytes under ``blob_key``, create-only; nothing partial is ever visible.

        Returns whether ``record`` went in with the bytes (a single put on a driver that keeps
        labels inline), so that no separate label write is needed.
        """
        driver = self._ctx.driver
        if self._record.staged:
            self._copy_staged(blob_key)
            return False
        if self._record.upload_id is None:
            labels = self._ctx.labels
            metadata = labels.commit_metadata(utcnow(), record)
            driver.put(
                blob_key, self._buffer.getvalue(), precondition=CREATE_ONLY, metadata=metadata
            )
            return record is not None and labels.inline_metadata(record) is not None
        self._uploads.reap(wait=True)
        if self._uploads.error is not None:
            raise FailedPreconditionError(
                f"a part upload for {self._ref!r} failed: {self._uploads.error}"
            ) from self._uploads.error
        key, upload_id = self._record.upload_key, self._record.upload_id
        assert key is not None and upload_id is not None
        if key != blob_key and key != self._ctx.layout.staging_key(self._ref):
            # Never complete a session into another digest's key (checked in _commit too).
            raise FailedPreconditionError(f"ingestion {self._ref!r} targets another digest")
        parts = list(self._uploads.parts)
        try:
            if self._buffer or not parts:
                number = len(parts) + 1
                tail = self._buffer.getvalue()
                start = self._record.offset - len(tail)
                parts.append(driver.upload_part_positioned(key, upload_id, number, start, tail))
            create_only = CREATE_ONLY if key == blob_key else None
            driver.complete_upload(key, upload_id, parts, precondition=create_only)
        except (NotFoundError, FailedPreconditionError) as exc:
            # Parts this writer recorded are gone or changed: the session can never complete
            # these bytes. Start over rather than leave an ingestion that cannot finish.
            self._restart()
            raise FailedPreconditionError(
                f"the upload session of {self._ref!r} lost parts ({exc}); the ingestion was "
                "restarted from offset 0: write it again"
            ) from exc
        # The session is complete: until the record says so, it must not be saved.
        self._torn = "commit"
        self._record.upload_id = None
        self._uploads.parts = []
        if key == blob_key:
            return False  # published; the ingestion is removed next
        self._buffer.clear()
        self._record.staged = True
        self._torn = None
        self._copy_staged(blob_key)
        return False

    def _copy_staged(self, blob_key: str) -> None:
        key = self._record.upload_key
        assert key is not None
        driver = self._ctx.driver
        try:
            driver.copy(key, blob_key, precondition=CREATE_ONLY)
        except AlreadyExistsError:
            driver.delete(key)
            raise
        driver.delete(key)

    def _remove(self) -> None:
        """The ingestion is over (committed or superseded): remove everything of it."""
        self._uploads.wait_all_quietly()
        self._closed = True
        sessions.remove_ingestion(self._ctx, self._ref, self._record)
