"""The writer: buffering into parts, the durable tail, checkpoints, restarts and status snapshots.

The record carries the hash state at its offset, so a writer reopened anywhere continues the
digest exactly; after a crash the last checkpoint is the resume point (see ``manager``, which
checks the recorded parts against the session before resuming). Parts uploaded after the last
checkpoint are simply uploaded again. ``complete_upload`` only accepts parts whose etags match
what this writer recorded, so bytes that were not hashed by this ingestion never reach a digest
key. Part uploads run in ``uploader``; the commit's requests in ``commit`` (the writer drives
them: the state transitions stay here).

**Interruptions.** A write, a restart or a commit changes the hash state, the offset, the buffered
tail and the part list in several steps; an exception can land between any two of them
(KeyboardInterrupt and SystemExit included). Each such step runs with ``_torn`` set and clears
it only once everything agrees again. A torn writer refuses every further operation, and its
``close`` saves nothing newer than the last checkpoint whose parts were all confirmed (a torn
commit saves nothing at all). ``state.check_record`` is checked on every save and every resume
as a second line of defence.

**Locking.** ``_lock`` serialises this writer's own operations and may be held across driver
calls and part-upload waits; no other object ever takes it. ``status()`` never takes it: it
reads ``_snap``, an immutable Status replaced under ``_status_lock`` (a leaf lock held for a few
assignments). The writer leaves the registry of writers (``registry``, whose lock is a leaf
lock too) only after letting go of ``_lock``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from ..digests import Hasher, new_hasher, parse_digest
from ..drivers.base import Part
from ..errors import (
    AlreadyExistsError,
    ContentError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from ..labels import LabelRecord, validate_labels
from ..locks import Lease
from ..types import Status
from . import commit as publish
from . import sessions
from .context import IngestContext
from .partbuffer import PartBuffer
from .state import IngestRecord, check_record, encode_hash_state, utcnow
from .uploader import PartUploader, part_size_for

__all__ = ["Writer"]

_log = logging.getLogger("cargohold.ingest")


def _piece(data: bytes | bytearray | memoryview, view: memoryview, pos: int, n: int) -> bytes:
    """``n`` bytes of ``data`` from ``pos``: ``data`` itself when that is all of an immutable
    ``bytes`` (kept by reference, no copy), else a copy."""
    if pos == 0 and n == len(view) and isinstance(data, bytes):
        return data
    return bytes(view[pos : pos + n])


class Writer:
    """Writes one ingestion; see the module docstring. Use as a context manager."""

    def __init__(
        self,
        ctx: IngestContext,
        ref: str,
        lease: Lease,
        record: IngestRecord,
        tail: bytes,
        hasher: Hasher,
        *,
        restart_reason: str | None = None,
        state_saved: bool = True,
    ) -> None:
        self._ctx = ctx
        self._ref = ref
        self._lease = lease
        self._record = record
        self._buffer = PartBuffer(tail)
        self._hasher = hasher
        self._uploads = PartUploader(
            ctx, [Part(int(n), int(s), str(e)) for n, s, e in record.parts]
        )
        self._closed = False
        self._aborted = False
        self._torn: str | None = None
        self._closing = False
        self._retired = False
        self._lock = threading.RLock()
        self._status_lock = threading.Lock()
        self._snap = record.status()
        self._accepted = 0
        self._accepted_at: datetime | None = None
        self._last_checkpoint = ctx.clock()
        self._durable_offset = record.offset
        self._durable: tuple[IngestRecord, bytes] = (record.copy(), tail)
        self._state_saved = state_saved
        """Whether the ingestion may have a state object (a new one starts with its record
        on its lease only, and saves state at its first checkpoint, session or close)."""
        self.restart_reason = restart_reason
        """Why an existing ingestion of this ref could not be resumed (it restarted from
        zero), or None."""

    # -- introspection -------------------------------------------------------------------

    @property
    def hint(self) -> str:
        """The digest the upload session targets without binding the commit, or ``""``."""
        return self._record.hint

    @property
    def ref(self) -> str:
        """The ingestion's ref."""
        return self._ref

    @property
    def lease(self) -> Lease:
        """The lease this writer holds on its ref."""
        return self._lease

    def status(self) -> Status:
        """The ingestion's status as this writer sees it: a snapshot, never waits."""
        return self._snap

    @property
    def retired(self) -> bool:
        """Committed with ``defer_removal``: the ingestion is over, though its records are
        removed only by the ``close`` that follows (never waits)."""
        return self._retired

    def digest(self) -> str:
        """Digest of every byte written so far."""
        with self._lock:
            return self._hasher.digest()

    def _refresh_status(self) -> None:
        """Publish the record's status (plus bytes accepted but not yet written)."""
        status = self._record.status()
        with self._status_lock:
            if self._accepted:
                status = replace(status, offset=status.offset + self._accepted)
                if self._accepted_at is not None:
                    status = replace(status, updated_at=self._accepted_at)
            self._snap = status

    def accept(self, size: int) -> None:
        """Count ``size`` bytes in the status now, before the ``write`` that brings them.

        For callers that answer a write before applying it (the gRPC plugin): the status then
        describes every write that was answered, with the time it was answered. If that
        ``write`` never succeeds, the writer fails (see ``write``).
        """
        if size <= 0:
            return
        now = utcnow()
        with self._status_lock:
            self._accepted += size
            self._accepted_at = now
            snap = self._snap
            self._snap = replace(snap, offset=snap.offset + size, updated_at=now)

    def _take_accepted(self, size: int) -> datetime | None:
        """Bytes accepted earlier arrive: the stamp they were accepted with, if any."""
        with self._status_lock:
            if not self._accepted:
                return None
            self._accepted = max(0, self._accepted - size)
            return self._accepted_at

    # -- writing -------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._aborted:
            raise FailedPreconditionError(f"ingestion {self._ref!r} was aborted")
        if self._closed:
            raise FailedPreconditionError(f"writer for {self._ref!r} is closed")
        if self._torn is not None:
            raise FailedPreconditionError(
                f"a {self._torn} of {self._ref!r} was interrupted; close this writer and "
                "open the ref again to resume at its last checkpoint"
            )
        self._lease.check()
        error = self._uploads.error
        if error is not None:
            raise FailedPreconditionError(
                f"a part upload for {self._ref!r} failed: {error}"
            ) from error

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Accept all of ``data``; return its length."""
        view = memoryview(data).cast("B")
        with self._lock:
            try:
                self._check_usable()
                if self._record.staged:
                    raise FailedPreconditionError(
                        f"ingestion {self._ref!r} is fully uploaded; commit it or truncate(0)"
                    )
            except BaseException as exc:
                if self._accepted and self._uploads.error is None:
                    self._uploads.error = exc  # bytes already answered for can never arrive now
                raise
            size = len(view)
            self._torn = "write"
            pos = 0
            while pos < size:
                part_size = self._current_part_size()
                if not self._buffer and size - pos >= part_size:
                    # A whole part in the caller's data: straight to the upload.
                    part = _piece(data, view, pos, part_size)
                    self._hasher.update(part)
                    pos += part_size
                    self._record.offset += part_size
                    self._upload(part)
                    continue
                chunk = _piece(data, view, pos, min(size - pos, part_size - len(self._buffer)))
                self._hasher.update(chunk)
                self._buffer.add(chunk)
                pos += len(chunk)
                self._record.offset += len(chunk)
                if len(self._buffer) >= part_size:
                    self._upload(self._buffer.take())
            if size:
                stamp = self._take_accepted(size) or utcnow()
                self._record.updated_at = stamp.isoformat()
            self._uploads.reap()
            self._torn = None
            self._refresh_status()
            self._maybe_checkpoint()
            return size

    def _current_part_size(self) -> int:
        return part_size_for(self._record.part_size, self._uploads.next_number())

    def _start_session(self) -> None:
        key = sessions.upload_key(self._ctx, self._ref, self._record.expected or self._record.hint)
        self._record.upload_id = self._ctx.driver.start_upload(key)
        self._record.upload_key = key

    def _save_session(self) -> None:
        """Record the new session at once, with the last durable point unchanged, so that a
        writer that dies before its first checkpoint leaves no session nobody knows of:
        reopening finds it and aborts it."""
        record, tail = self._durable
        record = record.copy()
        record.upload_id, record.upload_key = self._record.upload_id, self._record.upload_key
        self._save(record, tail)

    def _upload(self, data: bytes) -> None:
        """Send ``data``, the part that ends at the current offset.

        The first part of a new session is sent while the session's record is saved (one
        round trip less before the first byte goes out); the write still returns only once
        the record is saved, so a session is never left unrecorded by a write that returned.
        """
        new_session = self._record.upload_id is None
        if new_session:
            self._start_session()
        key, upload_id = self._record.upload_key, self._record.upload_id
        assert key is not None and upload_id is not None
        try:
            self._uploads.submit(
                key,
                upload_id,
                data,
                end_offset=self._record.offset,
                hash_state=self._hasher.state(),
            )
        finally:
            if new_session:
                self._save_session()

    def _save_checkpoint(self) -> None:
        """Record the last part boundary whose parts are all confirmed, if it is new."""
        checkpoint = self._uploads.checkpoint
        if checkpoint is None or checkpoint.offset <= self._durable_offset:
            return
        record = self._record.copy()
        record.offset = checkpoint.offset
        record.hash_state = encode_hash_state(checkpoint.hash_state)
        record.parts = [[p.number, p.size, p.etag] for p in self._uploads.parts[: checkpoint.parts]]
        record.staged = False
        self._save(record, b"")
        self._durable_offset = checkpoint.offset

    def _maybe_checkpoint(self) -> None:
        now = self._ctx.clock()
        if now - self._last_checkpoint >= self._ctx.lease_timeout / 3:
            self._last_checkpoint = now
            try:
                self._save_checkpoint()
            except ContentError as exc:
                # Only a resume point is lost: the next checkpoint or close saves a newer one.
                _log.warning("checkpoint of %r failed: %s", self._ref, exc)

    def truncate(self, size: int) -> None:
        """Only ``truncate(0)`` (restart; ``started_at`` kept) is supported."""
        with self._lock:
            self._check_usable()
            if not isinstance(size, int) or size < 0:
                raise InvalidArgumentError(f"truncate size must be a non-negative int: {size!r}")
            if size == self._record.offset:
                return
            if size != 0:
                raise InvalidArgumentError("only truncate(0) is supported on object storage")
            # Learn now whether the ref was aborted or taken over: restarting would otherwise
            # drop another writer's session and resurrect or overwrite its state.
            self._ctx.leases.renew(self._lease)
            self._restart()

    def _restart(self, *, drop_hint: bool = False) -> None:
        """Drop every byte and the upload session: offset 0, ``started_at`` kept.

        Parts still in flight are waited for and discarded. If anything fails (dropping the
        session, saving the reset record), the writer stays torn: its ``close`` saves nothing,
        and the durable record still names the dropped session, so reopening starts from zero.
        """
        self._torn = "restart"
        try:
            self._uploads.wait_all_quietly()
            sessions.drop_session(self._ctx, self._record)
        except BaseException as exc:
            self._uploads.error = exc
            raise
        if drop_hint:
            self._record.hint = ""
        self._record.upload_id = self._record.upload_key = None
        self._record.staged = False
        self._record.parts = []
        self._record.offset = 0
        self._record.updated_at = utcnow().isoformat()
        self._uploads.reset()
        self._buffer.clear()
        self._hasher = new_hasher(self._record.algorithm)
        with self._status_lock:
            self._accepted = 0
        self._persist()
        self._torn = None
        self._refresh_status()

    # -- ending --------------------------------------------------------------------------

    def _save(self, record: IngestRecord, tail: bytes) -> None:
        """Save ``record`` as the durable state, if it keeps every invariant of a record."""
        problem = check_record(record, tail)
        if problem is not None:
            raise FailedPreconditionError(
                f"refusing to save ingestion {self._ref!r}: {problem}; it resumes at its "
                "last saved point"
            )
        if self._aborted:
            raise FailedPreconditionError(f"ingestion {self._ref!r} was aborted")
        self._state_saved = True  # also if the put fails: it may have landed
        sessions.save_state(self._ctx, self._ref, record, tail)
        self._durable = (record.copy(), tail)

    def _persist(self) -> None:
        """Save the record, the hash state and the buffered tail (every byte written)."""
        self._record.parts = [[p.number, p.size, p.etag] for p in self._uploads.parts]
        self._record.hash_state = encode_hash_state(self._hasher.state())
        self._save(self._record, self._buffer.getvalue())
        self._durable_offset = self._record.offset

    def close(self) -> None:
        """Make everything written durable and release the ref; the ingestion stays.

        If a part upload failed, only what was confirmed is kept (the last checkpoint) and
        the upload error is raised; reopening resumes there. After an interrupted write only
        that checkpoint is kept too, quietly (the interruption is the error to report).
        """
        self._closing = True
        try:
            with self._lock:
                if self._retired:
                    self._remove_retired()
                else:
                    self._close_locked()
        finally:
            self._release()

    def _remove_retired(self) -> None:
        """The removal a ``defer_removal`` commit left to ``close``. The commit has been
        reported already, so a failure is only logged: what is left behind (a state object,
        a lease) expires or is replaced like that of a process that died here."""
        if self._closed:
            return
        try:
            self._remove()
        except ContentError as exc:
            _log.warning("removing committed ingestion %r's records failed: %s", self._ref, exc)

    def _close_locked(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._aborted or self._lease.lost:
            return
        try:
            # Learn now, not at the next renewal, whether the ref was aborted or taken
            # over: saving state then would resurrect a removed ingestion.
            self._ctx.leases.renew(self._lease)
        except FailedPreconditionError:
            return
        except ContentError:
            pass  # a transient failure: the state below is still ours to save
        if self._torn is not None:
            if self._torn == "write":
                self._uploads.reap(wait=True)
                with contextlib.suppress(ContentError):
                    self._save_checkpoint()
            else:
                self._uploads.wait_all_quietly()
            return
        self._uploads.reap(wait=True)
        error = self._uploads.error
        if error is None:
            self._persist()
            return
        self._save_checkpoint()
        raise FailedPreconditionError(
            f"a part upload for {self._ref!r} failed; the ingestion resumes at "
            f"offset {max(self._durable_offset, 0)}: {error}"
        ) from error

    def _release(self) -> None:
        """Let go of the ref: the lease, then the registry entry (never under ``_lock``)."""
        self._ctx.leases.release(self._lease)
        self._ctx.writers.discard(self)

    def commit(
        self,
        size: int = 0,
        expected: str = "",
        labels: dict[str, str] | None = None,
        *,
        published: Callable[[], None] | None = None,
        ready: Callable[[], None] | None = None,
        defer_removal: bool = False,
    ) -> None:
        """Verify size and digest, then publish the blob atomically; always closes, unless
        ``defer_removal`` (below).

        ``published`` is called once the blob and its labels are visible, before the
        ingestion's own records are removed (it must return at once: the writer's lock is
        held). A caller waiting for the blob, not for the clean-up, goes on from there.
        ``ready`` is called once the bytes are checked and the lease renewed, before anything
        is published or looked up: it waits (boundedly) for work the caller started beside
        the commit, and fails the commit by raising (nothing is published then).

        With ``defer_removal``, a successful commit returns once the blob is published and
        leaves the removal of the ingestion's records (state, then lease) to the ``close``
        that must follow, so that a caller can answer first. Until then the writer is
        ``retired``: this process's status and list_statuses no longer show the ref, and a
        reopen or an abort of it waits for that close. A failed commit closes as always.
        """
        self._closing = True
        retired = False
        try:
            with self._lock:
                try:
                    self._check_usable()
                    self._commit(size, expected, labels, published, ready)
                    retired = self._retired = defer_removal
                    if not retired:
                        self._remove()
                finally:
                    if not self._closed and not retired:
                        # The commit's own error (if any) is the one to report.
                        with contextlib.suppress(ContentError):
                            self._close_locked()
        finally:
            if not retired:
                self._release()

    # -- commit --------------------------------------------------------------------------

    def _commit(
        self,
        size: int,
        expected: str,
        labels: dict[str, str] | None,
        published: Callable[[], None] | None,
        ready: Callable[[], None] | None,
    ) -> None:
        checked_labels = validate_labels(labels)
        actual = self._hasher.digest()
        publish.check_commit(self._record, actual, size, expected)
        ctx = self._ctx
        ctx.leases.renew(self._lease)
        if ready is not None:
            ready()
        blob_key = ctx.layout.blob_key(parse_digest(actual))
        # A single create-only put, and a session completed create-only at the blob key
        # itself, answer "already exists" themselves (the session's last part is then sent
        # for nothing, which only a race with another writer of the same bytes costs). Other
        # sessions are checked first: completing them at their staging key and copying would
        # cost more, and a wrong hint would restart an ingestion whose blob is already there.
        single = self._record.upload_id is None and not self._record.staged
        at_blob_key = self._record.upload_id is not None and self._record.upload_key == blob_key
        answers_itself = single or at_blob_key
        if not answers_itself and sessions.blob_exists(ctx, blob_key):
            self._remove()
            raise AlreadyExistsError(f"content {actual} already exists")
        if self._record.hint and self._record.hint != actual and not self._record.expected:
            self._drop_wrong_hint(actual)
        now = utcnow()
        record = LabelRecord(now, now, checked_labels) if checked_labels else None
        try:
            etag, labelled = self._publish(blob_key, record)
        except AlreadyExistsError as exc:
            self._remove()
            raise AlreadyExistsError(f"content {actual} already exists") from exc
        if record is not None and not labelled:
            ctx.labels.write_at(blob_key, etag, record)
        if published is not None:
            published()

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

    def _publish(self, blob_key: str, record: LabelRecord | None) -> tuple[str, bool]:
        """Put the bytes under ``blob_key``, create-only; nothing partial is ever visible.

        Returns the blob's etag and whether ``record`` went in with the bytes.
        """
        if self._record.staged:
            return self._copy_staged(blob_key), False
        if self._record.upload_id is None:
            return publish.publish_single(self._ctx, blob_key, self._buffer.getvalue(), record)
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
        tail = self._buffer.getvalue()
        try:
            etag = publish.complete_session(
                self._ctx,
                key,
                upload_id,
                self._uploads.parts,
                tail,
                self._record.offset - len(tail),
                create_only=key == blob_key,
            )
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
            return etag, False  # published; the ingestion is removed next
        self._buffer.clear()
        self._record.staged = True
        self._torn = None
        return self._copy_staged(blob_key), False

    def _copy_staged(self, blob_key: str) -> str:
        key = self._record.upload_key
        assert key is not None
        try:
            etag = publish.copy_staged(self._ctx, key, blob_key)
        except AlreadyExistsError:
            self._record.staged = False  # deleted with that answer: nothing left to remove
            raise
        self._record.staged = False  # copied, then deleted: nothing left to remove
        return etag

    def _remove(self) -> None:
        """The ingestion is over (committed or superseded): remove everything of it.

        The lease goes only afterwards (``_release``): released first, it would let another
        writer open the ref and find this ingestion's state, then lose its own to this removal.
        """
        self._uploads.wait_all_quietly()
        self._closed = True
        sessions.remove_ingestion(self._ctx, self._ref, self._record, state_saved=self._state_saved)

    def mark_closing(self) -> None:
        """Announce that ``close`` or ``commit`` is coming (a reopen of the ref waits for it)."""
        self._closing = True

    @property
    def closing(self) -> bool:
        """Whether this writer is closing (or has closed)."""
        return self._closing or self._closed

    def mark_aborted(self) -> None:
        """Called by an abort in this process: later writes fail, close does nothing."""
        self._aborted = True

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
