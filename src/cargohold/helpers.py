"""What every program around a store does with a writer or a reader, done once.

In the spirit of containerd's content helpers (``WriteBlob``, ``ReadBlob``, ``Copy``):

* ``write_blob(store, ref, source, ...)`` ingests a file object: it resumes an interrupted
  ingestion of the same bytes where it stopped (after checking that the source's first bytes
  hash to what the ingestion holds), restarts it when they differ, counts content that is
  already stored as success and still applies the given labels to it, and reports what it did.
* ``read_blob(store, digest, dest)`` copies a blob to a file object or a path, checking its
  digest as it streams; a path is written to a temporary name and renamed at the end, so a
  failed or interrupted read leaves nothing behind.
* ``copy_blob(source, dest, digest)`` copies a blob between stores through both.
* ``open_blob(store, digest)`` (from ``blob_reader``) is the verifying file object they use.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol, cast, runtime_checkable

from .blob_reader import READ_CHUNK, VerifyingReader, open_blob
from .digests import parse_digest
from .errors import AlreadyExistsError, InvalidArgumentError
from .ingest import Writer
from .store import Store
from .types import Descriptor, Info

__all__ = [
    "Progress",
    "Sink",
    "Source",
    "VerifyingReader",
    "WriteResult",
    "apply_labels",
    "copy_blob",
    "open_blob",
    "read_blob",
    "write_blob",
]

_SPOOL_IN_MEMORY = 8 * 1024 * 1024


class Source(Protocol):
    """What ``write_blob`` reads: ``read(n) -> bytes`` (b"" at the end). ``seekable()``,
    ``seek()`` and ``tell()`` are used when present; ``read1()`` too, for pipes."""

    def read(self, size: int, /) -> bytes: ...


class Sink(Protocol):
    """What ``read_blob`` writes to: ``write(data)``; ``flush()`` is called when present."""

    def write(self, data: bytes, /) -> object: ...


@runtime_checkable
class _Positioned(Protocol):
    def seekable(self) -> bool: ...

    def seek(self, offset: int, whence: int = ..., /) -> int: ...

    def tell(self) -> int: ...


@dataclass(frozen=True)
class Progress:
    """How far a transfer is: ``done`` of ``total`` bytes (``total`` 0 when unknown).

    For ``write_blob``, the first report comes before any byte is read, with ``done`` equal to
    ``resumed_at`` (the offset the ingestion resumes at) and ``restarted`` saying why an
    earlier ingestion of the ref was started over from zero (None if it was not).
    """

    done: int
    total: int
    resumed_at: int = 0
    restarted: str | None = None


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class WriteResult:
    """What ``write_blob`` did.

    ``existed``: the content was already stored (nothing new was written; labels, if given,
    were applied to it). ``resumed_at``: the offset an earlier ingestion of the ref resumed at
    (0 for a fresh one). ``restarted``: why an earlier ingestion was started over, or None.
    """

    digest: str
    size: int
    existed: bool
    resumed_at: int = 0
    restarted: str | None = None


def apply_labels(store: Store, digest: str, labels: Mapping[str, str]) -> Info:
    """Set ``labels`` on a stored blob, keeping every other label it has."""
    now = datetime.now(UTC)
    paths = [f"labels.{key}" for key in labels]
    if not paths:
        return store.info(digest)
    return store.update(Info(digest, 0, now, now, dict(labels)), *paths)


def _positioned(source: Source) -> _Positioned | None:
    """``source`` if it can seek, else None."""
    if not isinstance(source, _Positioned):
        return None
    try:
        return source if source.seekable() else None
    except (OSError, ValueError):
        return None


def _source_length(source: _Positioned, start: int) -> int:
    """Bytes left in a seekable source from ``start`` (the position is restored)."""
    end = source.seek(0, os.SEEK_END)
    source.seek(start)
    return max(end - start, 0)


def _hash_prefix(source: Source, length: int, algorithm: str, keep: IO[bytes] | None) -> str:
    """Digest of the next ``length`` bytes of ``source`` (fewer if it ends first; then the
    digest cannot match). Bytes read are copied to ``keep`` when given."""
    hasher = hashlib.new(algorithm)
    left = length
    while left > 0:
        chunk = source.read(min(READ_CHUNK, left))
        if not chunk:
            return "short"
        hasher.update(chunk)
        if keep is not None:
            keep.write(chunk)
        left -= len(chunk)
    return f"{algorithm}:{hasher.hexdigest()}"


@dataclass
class _Resume:
    offset: int
    restarted: str | None
    replay: IO[bytes] | None = None
    """Bytes consumed from a non-seekable source that must be written again after a restart."""


def _resume_point(writer: Writer, source: Source, expected: str) -> _Resume:
    """Decide where ``writer`` continues: at its offset if the source starts with the bytes it
    holds, else at zero (after ``truncate(0)``). Leaves the source just past what is kept."""
    restarted = writer.restart_reason
    offset = writer.status().offset
    if offset == 0:
        return _Resume(0, restarted)
    held = writer.digest()
    algorithm = held.partition(":")[0]
    positioned = _positioned(source)
    if positioned is not None:
        start = positioned.tell()
        length = _source_length(positioned, start)
        if length < offset:
            reason = f"the source has {length} bytes, fewer than the {offset} already ingested"
        elif _hash_prefix(source, offset, algorithm, None) == held:
            return _Resume(offset, restarted)
        else:
            reason = f"the source's first {offset} bytes differ from those already ingested"
        positioned.seek(start)
        writer.truncate(0)
        return _Resume(0, reason)
    if not expected:
        writer.truncate(0)
        return _Resume(
            0,
            f"{offset} bytes were already ingested, but a source that cannot be re-read "
            "(a pipe) can only resume when its expected digest is given",
        )
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
    try:
        if _hash_prefix(source, offset, algorithm, spool) == held:
            spool.close()
            return _Resume(offset, restarted)
        writer.truncate(0)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    reason = f"the source's first {offset} bytes differ from those already ingested"
    return _Resume(0, reason, spool)


def _reader_of(source: Source) -> Callable[[int], bytes]:
    """How to read a chunk: from a pipe, whatever has arrived (``read1``) rather than waiting
    for a whole chunk, so that every byte received is written before an interruption."""
    read1 = getattr(source, "read1", None)
    if read1 is not None and _positioned(source) is None:
        return cast(Callable[[int], bytes], read1)
    return source.read


def _copy_into(
    writer: Writer, source: Source, done: int, total: int, progress: ProgressCallback | None
) -> int:
    read = _reader_of(source)
    while chunk := read(READ_CHUNK):
        writer.write(chunk)
        done += len(chunk)
        if progress is not None:
            progress(Progress(done, total))
    return done


def write_blob(
    store: Store,
    ref: str,
    source: Source,
    *,
    expected: str = "",
    size: int = 0,
    labels: Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
    known_absent: bool = False,
) -> WriteResult:
    """Ingest ``source`` (a binary file object, read from its current position) under ``ref``.

    An earlier, interrupted ingestion of ``ref`` is resumed at its offset when the source is
    seekable and its first bytes hash to the ingestion's digest so far, or when the source is
    not seekable (a pipe) and ``expected`` is given (its first bytes are then read and checked
    too); otherwise it restarts from zero, and ``WriteResult.restarted`` says why. Content that
    is already stored counts as success (``existed=True``) and gets ``labels`` (merged into the
    labels it has). ``size``/``expected``, when given, are checked at commit
    (FailedPreconditionError; the ingestion is kept, to be fixed or aborted). ``known_absent``:
    the caller has just seen that ``expected`` is not stored, so the writer's open does not ask
    again (a blob committed meanwhile is still found, by the commit).
    """
    wanted = dict(labels or {})
    if expected:
        expected = str(parse_digest(expected))
    if not isinstance(size, int) or size < 0:
        raise InvalidArgumentError(f"size must be a non-negative int, got {size!r}")
    try:
        desc = Descriptor(digest=expected, size=size)
        writer = store.writer(ref, desc, known_absent=known_absent and bool(expected))
    except AlreadyExistsError:
        info = apply_labels(store, expected, wanted)
        return WriteResult(expected, info.size, existed=True)
    with writer:
        resume = _resume_point(writer, source, expected)
        total = size or writer.status().total
        positioned = _positioned(source)
        if not total and positioned is not None:
            total = resume.offset + _source_length(positioned, positioned.tell())
        if progress is not None:
            progress(Progress(resume.offset, total, resume.offset, resume.restarted))
        done = resume.offset
        if resume.replay is not None:
            with resume.replay:
                done = _copy_into(writer, resume.replay, done, total, progress)
        done = _copy_into(writer, source, done, total, progress)
        digest = writer.digest()
        written = writer.status().offset
        try:
            writer.commit(size, expected, wanted)
        except AlreadyExistsError:
            info = apply_labels(store, digest, wanted)
            return WriteResult(digest, info.size, True, resume.offset, resume.restarted)
    return WriteResult(digest, written, False, resume.offset, resume.restarted)


def copy_blob(
    source: Store,
    dest: Store,
    blob: Descriptor | str,
    *,
    ref: str = "",
    labels: Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
) -> WriteResult:
    """Copy a blob from one store to another (containerd's ``content.Copy``).

    The bytes are verified as they are read (DataLossError, and nothing committed, if they do
    not match) and committed under the same digest; a blob the destination already has counts
    as success (and gets ``labels``). An interrupted copy with the same ``ref`` (default:
    ``copy-<digest>``) resumes.
    """
    with open_blob(source, blob) as reader:
        return write_blob(
            dest,
            ref or f"copy-{reader.digest}",
            reader,
            expected=reader.digest,
            size=reader.size,
            labels=labels,
            progress=progress,
        )


def read_blob(
    store: Store,
    blob: Descriptor | str,
    dest: Sink | str | os.PathLike[str],
    *,
    verify: bool = True,
    progress: ProgressCallback | None = None,
) -> int:
    """Copy a blob to ``dest`` (a binary file object, or a path), checking its digest as it
    streams (DataLossError on a mismatch); return the number of bytes copied.

    A path is written under a temporary name in its directory and renamed into place only
    once every byte is there and verified; on any failure (Ctrl-C included) the temporary file
    is removed and an existing file at the path is left as it was.
    """
    with open_blob(store, blob, verify=verify) as reader:
        if isinstance(dest, str | os.PathLike):
            return _read_to_path(reader, Path(dest), progress)
        return _pump(reader, dest, progress)


def _pump(reader: VerifyingReader, dest: Sink, progress: ProgressCallback | None) -> int:
    done = 0
    while chunk := reader.read(READ_CHUNK):
        dest.write(chunk)
        done += len(chunk)
        if progress is not None:
            progress(Progress(done, reader.size))
    reader.finish()
    flush = getattr(dest, "flush", None)
    if flush is not None:
        flush()
    return done


def _read_to_path(reader: VerifyingReader, path: Path, progress: ProgressCallback | None) -> int:
    if path.exists() and not path.is_file():
        # A device or FIFO (say /dev/null): written in place, never replaced by a rename.
        with path.open("wb") as handle:
            return _pump(reader, handle, progress)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        with temporary.open("xb") as handle:
            done = _pump(reader, handle, progress)
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            temporary.unlink()
        raise
    return done
