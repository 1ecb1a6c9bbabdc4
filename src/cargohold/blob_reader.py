"""A committed blob as a read-only file object that checks the blob's digest as it is read.

``open_blob(store, digest)`` returns a ``VerifyingReader``: an ``io.RawIOBase`` that fetches the
blob through ``store.reader_at`` in large chunks (8 MiB by default) and hashes every byte the
first time it passes in order from the start. When the hashed bytes reach the blob's end, their
digest is compared with the blob's key *before* the last chunk is handed out, so a consumer
(``shutil.copyfileobj``, ``tarfile.open(fileobj=..., mode="r|*")``, ``gzip``, ...) never finishes
on corrupt data without a ``DataLossError``.

Seeking is allowed; bytes read out of order are returned unchecked until the in-order hash
catches up. ``finish()`` reads and hashes whatever was not hashed yet and checks the digest;
leaving a ``with`` block without an exception calls it, so a consumer that stops before the end
(tar readers skip the archive's trailing padding) is still told about corruption.
"""

from __future__ import annotations

import hashlib
import io
from types import TracebackType
from typing import TYPE_CHECKING

from .content import ReaderAt
from .digests import parse_digest
from .errors import DataLossError, FailedPreconditionError, InvalidArgumentError
from .store import Store
from .types import Descriptor

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["READ_CHUNK", "VerifyingReader", "open_blob"]

READ_CHUNK = 8 * 1024 * 1024
"""Bytes fetched per request: few, large ranged reads (each request costs a round trip)."""


class VerifyingReader(io.RawIOBase):
    """A blob's bytes as a seekable, read-only binary file that verifies the digest.

    ``verify=False`` skips hashing (the reader is then a plain sequential view of the blob).
    """

    def __init__(
        self, reader: ReaderAt, digest: str, *, chunk_size: int = READ_CHUNK, verify: bool = True
    ) -> None:
        super().__init__()
        parsed = parse_digest(digest)
        if chunk_size <= 0:
            raise InvalidArgumentError(f"chunk_size must be positive, got {chunk_size}")
        self._reader = reader
        self._digest = str(parsed)
        self._hasher = hashlib.new(parsed.algorithm) if verify else None
        self._chunk_size = chunk_size
        self._size = reader.size
        self._pos = 0
        self._hashed = 0
        self._verified = False
        self._damage: DataLossError | None = None
        self._buffer = b""
        self._buffer_start = 0

    # -- what it is ----------------------------------------------------------------------

    @property
    def digest(self) -> str:
        """The digest the blob is stored under (and must hash to)."""
        return self._digest

    @property
    def size(self) -> int:
        """The blob's size in bytes."""
        return self._size

    @property
    def verified(self) -> bool:
        """Whether every byte has been hashed and the digest matched."""
        return self._verified

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    # -- reading -------------------------------------------------------------------------

    def _read_chunk(self, offset: int) -> bytes:
        data = self._reader.read_at(offset, min(self._chunk_size, self._size - offset))
        if not data:
            raise DataLossError(
                f"content {self._digest} ends at byte {offset}, but its size is {self._size}; "
                "the stored blob is damaged"
            )
        return data

    def _fetch(self, offset: int) -> None:
        """Load the chunk at ``offset`` into the buffer, hashing any part that extends the
        in-order hashed prefix; raise DataLossError before returning a corrupt end."""
        data = self._read_chunk(offset)
        self._hash_from(data, offset)
        self._buffer, self._buffer_start = data, offset

    def _hash_from(self, data: bytes, offset: int) -> None:
        if self._hasher is None or not offset <= self._hashed < offset + len(data):
            return
        self._hasher.update(memoryview(data)[self._hashed - offset :])
        self._hashed = offset + len(data)
        if self._hashed >= self._size:
            self._check()

    def _check(self) -> None:
        assert self._hasher is not None
        actual = f"{self._digest.partition(':')[0]}:{self._hasher.hexdigest()}"
        if actual != self._digest:
            raise DataLossError(
                f"content {self._digest} is damaged: its {self._size} stored bytes hash to {actual}"
            )
        self._verified = True

    def _available(self) -> memoryview:
        """The buffered bytes from the current position (fetching them if needed)."""
        if self._damage is not None:
            raise self._damage
        end = self._buffer_start + len(self._buffer)
        if not self._buffer_start <= self._pos < end:
            self._fetch(self._pos)
        return memoryview(self._buffer)[self._pos - self._buffer_start :]

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill ``buffer`` from the current position; short only at the end of the blob.

        Reads are never short before the end (as with a buffered file), so that consumers
        that expect whole records, such as ``tarfile`` in its seeking modes, work unchanged.
        """
        target = memoryview(buffer).cast("B")
        if self.closed:
            raise ValueError("I/O operation on closed file")
        filled = 0
        while filled < len(target) and self._pos < self._size:
            view = self._available()
            n = min(len(view), len(target) - filled)
            target[filled : filled + n] = view[:n]
            self._pos += n
            filled += n
        if not filled:
            self._check_empty()
        return filled

    def read(self, size: int | None = -1) -> bytes:
        """``size`` bytes (fewer only at the end; all that is left when negative or None)."""
        if size is None or size < 0:
            return self.readall()
        if self.closed:
            raise ValueError("I/O operation on closed file")
        pieces: list[bytes] = []
        left = size
        while left > 0 and self._pos < self._size:
            view = self._available()
            piece = bytes(view[:left])
            self._pos += len(piece)
            left -= len(piece)
            pieces.append(piece)
        if not pieces:
            self._check_empty()
            return b""
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readall(self) -> bytes:
        """Every byte from the current position to the end."""
        return self.read(max(self._size - self._pos, 0))

    def _check_empty(self) -> None:
        # An empty blob reaches its end without any fetch: check it once.
        if self._hasher is not None and self._size == 0 and not self._verified:
            self._check()

    def finish(self) -> None:
        """Hash every byte not hashed yet and check the digest (DataLossError if it differs).

        The read position is left where it was. Does nothing with ``verify=False``.
        """
        if self._damage is not None:
            raise self._damage
        if self._hasher is None or self._verified:
            return
        if self._size == 0:
            self._check()
        while self._hashed < self._size:
            self._hash_from(self._read_chunk(self._hashed), self._hashed)

    # -- positioning ---------------------------------------------------------------------

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the read position (past the end is allowed; reads there return ``b""``)."""
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence!r}")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._pos = target
        return target

    # -- ending --------------------------------------------------------------------------

    def close(self) -> None:
        """Release the reader (no check: use ``finish()`` or a ``with`` block for that)."""
        if not self.closed:
            self._buffer = b""
            self._reader.close()
        super().close()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.finish()
        finally:
            self.close()


def open_blob(
    store: Store,
    blob: Descriptor | str,
    *,
    verify: bool = True,
    chunk_size: int = READ_CHUNK,
) -> VerifyingReader:
    """Open a committed blob (a digest or a Descriptor) as a verifying file object.

    With a Descriptor whose ``size`` is set, a stored blob of another size is a
    FailedPreconditionError at once. NotFoundError if the blob is not stored.
    """
    digest = blob.digest if isinstance(blob, Descriptor) else blob
    parse_digest(digest)
    reader = store.reader_at(digest)
    try:
        if isinstance(blob, Descriptor) and blob.size and blob.size != reader.size:
            raise FailedPreconditionError(
                f"content {digest} is {reader.size} bytes, not {blob.size} as described"
            )
        return VerifyingReader(reader, digest, chunk_size=chunk_size, verify=verify)
    except BaseException:
        reader.close()
        raise
