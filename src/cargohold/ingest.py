"""The writer: buffering into parts, parallel part uploads, the durable tail, resume and commit.

An ingestion is kept under ``ingest/<sha256(ref)>/``:

* ``lock``: the writer's lease (see ``locks``).
* ``state``: one object holding the ingestion's record (JSON) and its *tail*, the buffered bytes
  not yet uploaded as a part. Written when the ingestion starts, at ``close()``, and as a
  checkpoint about every ``lease_timeout / 3`` seconds while parts are being uploaded.
* an upload session (driver multipart upload) holding the parts. Its target is the blob key
  itself when the expected digest is known up front, else ``ingest/<h>/data``, whose bytes are
  copied to the blob key at commit. A *hint* (a digest the bytes are likely to have, such as
  the one a containerd ref names) also targets the blob key, without binding the commit: if the
  bytes turn out to have another digest, the commit fails once with FailedPrecondition and the
  ingestion restarts from zero without the hint, since parts uploaded for one key can never be
  completed under another.

The record carries the hash state at its offset, so a writer reopened anywhere continues the
digest exactly; after a crash the last checkpoint is the resume point. Before resuming, the
recorded parts are checked against the session (``list_parts``); parts uploaded after the last
checkpoint are simply uploaded again. ``complete_upload`` only accepts parts whose etags match
what this writer recorded, so bytes that were not hashed by this ingestion never reach a digest
key.

**Interruptions.** A write, a restart or a commit changes the hash state, the offset, the buffered
tail and the part list in several steps; an exception can land between any two of them
(KeyboardInterrupt and SystemExit included). Each such step runs with ``_torn`` set and clears
it only once everything agrees again. A torn writer refuses every further operation, and its
``close`` saves nothing newer than the last checkpoint whose parts were all confirmed (a torn
commit saves nothing at all). ``ingest_state.check_record`` is checked on every save and every
resume as a second line of defence.

**Locking.** ``_lock`` serialises this writer's own operations and may be held across driver
calls and part-upload waits; no other object ever takes it. ``status()`` never takes it: it
reads ``_snap``, an immutable Status replaced under ``_status_lock`` (a leaf lock held for a few
assignments). The writer calls into the Store (``release_writer``) only after letting go of
``_lock``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from .digests import Hasher, new_hasher, parse_digest
from .drivers.base import Part
from .errors import (
    AlreadyExistsError,
    ContentError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from .ingest_state import (
    IngestRecord,
    check_record,
    decode_state,
    encode_hash_state,
    encode_state,
    utcnow,
)
from .labels import LabelRecord, validate_labels
from .locks import Lease
from .partbuffer import PartBuffer
from .types import Status

if TYPE_CHECKING:
    from .store import Store

__all__ = ["IngestRecord", "Writer", "decode_state", "encode_state", "utcnow"]

_log = logging.getLogger("cargohold.ingest")
_PARTS_PER_STEP = 1000


def _piece(data: bytes | bytearray | memoryview, view: memoryview, pos: int, n: int) -> bytes:
    """``n`` bytes of ``data`` from ``pos``: ``data`` itself when that is all of an immutable
    ``bytes`` (kept by reference, no copy), else a copy."""
    if pos == 0 and n == len(view) and isinstance(data, bytes):
        return data
    return bytes(view[pos : pos + n])


def part_size_for(base: int, number: int) -> int:
    """Size of part ``number``: the base doubles every 1,000 parts (room for 10,000 parts)."""
    return base << ((number - 1) // _PARTS_PER_STEP)


@dataclass
class _Pending:
    number: int
    size: int
    future: Future[Part]
    hash_state: bytes | None
    end_offset: int


class Writer:
    """Writes one ingestion; see the module docstring. Use as a context manager."""

    def __init__(
        self,
        store: Store,
        ref: str,
        lease: Lease,
        record: IngestRecord,
        tail: bytes,
        hasher: Hasher,
        *,
        restart_reason: str | None = None,
    ) -> None:
        self._store = store
        self._ref = ref
        self._lease = lease
        self._record = record
        self._buffer = PartBuffer(tail)
        self._hasher = hasher
        self._parts: list[Part] = [Part(int(n), int(s), str(e)) for n, s, e in record.parts]
        self._pending: list[_Pending] = []
        self._error: BaseException | None = None
        self._closed = False
        self._aborted = False
        self._torn: str | None = None
        self._closing = False
        self._lock = threading.RLock()
        self._status_lock = threading.Lock()
        self._snap = record.status()
        self._accepted = 0
        self._accepted_at: datetime | None = None
        # Parts held in memory (one more than uploads in flight, so that the next part is
        # ready the moment an upload finishes) and uploads in flight.
        self._slots = threading.Semaphore(store.concurrency + 1)
        self._gate = threading.Semaphore(store.concurrency)
        self._last_checkpoint = store.clock()
        self._durable_offset = record.offset
        self._checkpoint: tuple[int, bytes, int] | None = None
        self._durable: tuple[IngestRecord, bytes] = (record.copy(), tail)
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
        return self._ref

    def status(self) -> Status:
        """The ingestion's status as this writer sees it: a snapshot, never waits."""
        return self._snap

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
        if self._error is not None:
            raise FailedPreconditionError(
                f"a part upload for {self._ref!r} failed: {self._error}"
            ) from self._error

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
                if self._accepted and self._error is None:
                    self._error = exc  # bytes already answered for can never arrive now
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
                    self._upload(part, final=False)
                    continue
                chunk = _piece(data, view, pos, min(size - pos, part_size - len(self._buffer)))
                self._hasher.update(chunk)
                self._buffer.add(chunk)
                pos += len(chunk)
                self._record.offset += len(chunk)
                if len(self._buffer) >= part_size:
                    self._cut_part()
            if size:
                stamp = self._take_accepted(size) or utcnow()
                self._record.updated_at = stamp.isoformat()
            self._reap()
            self._torn = None
            self._refresh_status()
            self._maybe_checkpoint()
            return size

    def _current_part_size(self) -> int:
        return part_size_for(self._record.part_size, self._next_number())

    def _next_number(self) -> int:
        return len(self._parts) + len(self._pending) + 1

    def _cut_part(self) -> None:
        self._upload(self._buffer.take(), final=False)

    def _ensure_session(self) -> None:
        if self._record.upload_id is None:
            key = self._store.upload_key(self._ref, self._record.expected or self._record.hint)
            self._record.upload_id = self._store.driver.start_upload(key)
            self._record.upload_key = key
            # Record the session at once, with the last durable point unchanged, so that a
            # writer that dies before its first checkpoint leaves no session nobody knows of:
            # reopening finds it and aborts it.
            record, tail = self._durable
            record = record.copy()
            record.upload_id, record.upload_key = self._record.upload_id, key
            self._save(record, tail)

    def _upload(self, data: bytes, *, final: bool) -> None:
        self._ensure_session()
        number = self._next_number()
        key, upload_id = self._record.upload_key, self._record.upload_id
        assert key is not None and upload_id is not None
        self._slots.acquire()
        try:
            future = self._store.executor.submit(
                self._send_part, key, upload_id, number, self._record.offset - len(data), data
            )
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _f: self._slots.release())
        state = None if final else self._hasher.state()
        self._pending.append(_Pending(number, len(data), future, state, self._record.offset))

    def _send_part(self, key: str, upload_id: str, number: int, offset: int, data: bytes) -> Part:
        with self._gate:
            return self._store.driver.upload_part_at(key, upload_id, number, offset, data)

    def _reap(self, wait: bool = False) -> None:
        """Move finished uploads (in order) to the confirmed parts; remember the first error."""
        while self._pending and self._error is None:
            head = self._pending[0]
            if not head.future.done():
                if not wait:
                    return
                # An interruption while waiting (Ctrl-C) is the caller's, not the upload's.
                futures_wait([head.future])
            failure = head.future.exception()
            if failure is not None:
                self._error = failure
                break
            part = head.future.result()
            self._parts.append(part)
            self._pending.pop(0)
            if head.hash_state is not None:
                self._checkpoint = (head.end_offset, head.hash_state, len(self._parts))
        if self._error is not None:
            self._wait_all_quietly()

    def _wait_all_quietly(self) -> None:
        """Wait for every upload in flight, ignoring their failures (not an interruption)."""
        futures_wait([pending.future for pending in self._pending])
        self._pending.clear()

    def _save_checkpoint(self) -> None:
        """Record the last part boundary whose parts are all confirmed, if it is new."""
        if self._checkpoint is None:
            return
        offset, hash_state, count = self._checkpoint
        if offset <= self._durable_offset:
            return
        record = self._record.copy()
        record.offset = offset
        record.hash_state = encode_hash_state(hash_state)
        record.parts = [[p.number, p.size, p.etag] for p in self._parts[:count]]
        record.staged = False
        self._save(record, b"")
        self._durable_offset = offset

    def _maybe_checkpoint(self) -> None:
        now = self._store.clock()
        if now - self._last_checkpoint >= self._store.lease_timeout / 3:
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
            self._store.leases.renew(self._lease)
            self._restart()

    def _restart(self, *, drop_hint: bool = False) -> None:
        """Drop every byte and the upload session: offset 0, ``started_at`` kept.

        Parts still in flight are waited for and discarded. If anything fails (dropping the
        session, saving the reset record), the writer stays torn: its ``close`` saves nothing,
        and the durable record still names the dropped session, so reopening starts from zero.
        """
        self._torn = "restart"
        try:
            self._wait_all_quietly()
            self._store.drop_session(self._record)
        except BaseException as exc:
            self._error = exc
            raise
        if drop_hint:
            self._record.hint = ""
        self._record.upload_id = self._record.upload_key = None
        self._record.staged = False
        self._record.parts = []
        self._record.offset = 0
        self._record.updated_at = utcnow().isoformat()
        self._parts = []
        self._buffer.clear()
        self._error = None
        self._checkpoint = None
        self._hasher = new_hasher(self._record.algorithm)
        with self._status_lock:
            self._accepted = 0
        self._persist()
        self._torn = None
        self._refresh_status()

    def _drop_wrong_hint(self, actual: str) -> None:
        """The bytes do not have the hinted digest. Parts uploaded for the hint's key can never
        be completed under another key, so restart without the hint (the retry stages) and
        fail this commit. Without a session (a blob under one part) nothing is lost: the hint
        is only dropped."""
        hint = self._record.hint
        hinted_key = self._store.blob_key(parse_digest(hint))
        if self._record.upload_id is None or self._record.upload_key != hinted_key:
            self._record.hint = ""
            return
        self._restart(drop_hint=True)
        raise FailedPreconditionError(
            f"ingestion {self._ref!r} has digest {actual}, not {hint} as its ref suggested; "
            "it was restarted from offset 0: write it again"
        )

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
        self._store.save_state(self._ref, record, tail)
        self._durable = (record.copy(), tail)

    def _persist(self) -> None:
        """Save the record, the hash state and the buffered tail (every byte written)."""
        self._record.parts = [[p.number, p.size, p.etag] for p in self._parts]
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
                self._close_locked()
        finally:
            self._store.release_writer(self)

    def _close_locked(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._aborted or self._lease.lost:
            return
        try:
            # Learn now, not at the next renewal, whether the ref was aborted or taken
            # over: saving state then would resurrect a removed ingestion.
            self._store.leases.renew(self._lease)
        except FailedPreconditionError:
            return
        except ContentError:
            pass  # a transient failure: the state below is still ours to save
        if self._torn is not None:
            if self._torn == "write":
                self._reap(wait=True)
                with contextlib.suppress(ContentError):
                    self._save_checkpoint()
            else:
                self._wait_all_quietly()
            return
        self._reap(wait=True)
        if self._error is None:
            self._persist()
            return
        self._save_checkpoint()
        raise FailedPreconditionError(
            f"a part upload for {self._ref!r} failed; the ingestion resumes at "
            f"offset {max(self._durable_offset, 0)}: {self._error}"
        ) from self._error

    def commit(
        self, size: int = 0, expected: str = "", labels: dict[str, str] | None = None
    ) -> None:
        """Verify size and digest, then publish the blob atomically; always closes."""
        self._closing = True
        try:
            with self._lock:
                try:
                    self._check_usable()
                    self._commit(size, expected, labels)
                finally:
                    if not self._closed:
                        # The commit's own error (if any) is the one to report.
                        with contextlib.suppress(ContentError):
                            self._close_locked()
        finally:
            self._store.release_writer(self)

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
        store = self._store
        store.leases.renew(self._lease)
        blob_key = store.blob_key(parse_digest(actual))
        if store.blob_exists(blob_key):
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
            store.labels.write(store.driver.head(blob_key), record)
        self._remove()

    def _publish(self, blob_key: str, record: LabelRecord | None) -> bool:
        """Put the bytes under ``blob_key``, create-only; nothing partial is ever visible.

        Returns whether ``record`` went in with the bytes (a single put on a driver that keeps
        labels inline), so that no separate label write is needed.
        """
        driver = self._store.driver
        if self._record.staged:
            self._copy_staged(blob_key)
            return False
        if self._record.upload_id is None:
            labels = self._store.labels
            metadata = labels.commit_metadata(utcnow(), record)
            driver.put(blob_key, self._buffer.getvalue(), if_none_match=True, metadata=metadata)
            return record is not None and labels.inline_metadata(record) is not None
        self._reap(wait=True)
        if self._error is not None:
            raise FailedPreconditionError(
                f"a part upload for {self._ref!r} failed: {self._error}"
            ) from self._error
        key, upload_id = self._record.upload_key, self._record.upload_id
        assert key is not None and upload_id is not None
        if key != blob_key and key != self._store.upload_key(self._ref, ""):
            # Never complete a session into another digest's key (checked in _commit too).
            raise FailedPreconditionError(f"ingestion {self._ref!r} targets another digest")
        parts = list(self._parts)
        try:
            if self._buffer or not parts:
                number = len(parts) + 1
                tail = self._buffer.getvalue()
                start = self._record.offset - len(tail)
                parts.append(driver.upload_part_at(key, upload_id, number, start, tail))
            driver.complete_upload(key, upload_id, parts, if_none_match=key == blob_key)
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
        self._parts = []
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
        try:
            self._store.driver.copy(key, blob_key, if_none_match=True)
        except AlreadyExistsError:
            self._store.driver.delete(key)
            raise
        self._store.driver.delete(key)

    def _remove(self) -> None:
        """The ingestion is over (committed or superseded): remove everything of it."""
        self._wait_all_quietly()
        self._closed = True
        self._store.remove_ingestion(self._ref, self._record)

    def mark_closing(self) -> None:
        """Announce that ``close`` or ``commit`` is coming (a reopen of the ref waits for it)."""
        self._closing = True

    @property
    def closing(self) -> bool:
        """Whether this writer is closing (or has closed)."""
        return self._closing or self._closed

    def mark_aborted(self) -> None:
        """Called by ``Store.abort`` in this process: later writes fail, close does nothing."""
        self._aborted = True

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def lease(self) -> Lease:
        return self._lease
