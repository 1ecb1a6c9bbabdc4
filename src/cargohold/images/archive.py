"""Files of an image on disk, by relative path: a directory, or a tar archive (maybe gzipped).

``open_source(path)`` gives an ``ArchiveSource`` whatever the form: ``names()``, ``size(name)``,
``open(name)`` (a binary file object, streamed from disk, never read whole into memory) and
``read_small(name)`` for the JSON files. A gzipped tar is first decompressed into a temporary
file next to nothing else (the system's temp directory), so that members can be read in any
order without decompressing the stream again and again. Members are read with positioned reads
(``os.pread``) of their bytes in the tar, so several threads may read members at once.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO

from ..errors import InvalidArgumentError, NotFoundError

__all__ = ["MAX_JSON_BYTES", "ArchiveSource", "open_source"]

MAX_JSON_BYTES = 8 * 1024 * 1024
"""The largest JSON document (index, manifest, config) read into memory."""
_COPY_CHUNK = 1024 * 1024


class _MemberReader(io.RawIOBase):
    """A tar member's bytes, read with ``os.pread`` from the archive's descriptor: no shared
    file position, so readers of different members may run on different threads."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        super().__init__()
        self._fd, self._offset, self._size = fd, offset, size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._offset + self._pos)
        if not data:
            raise InvalidArgumentError("the archive ends inside a member")
        n = len(data)
        buffer[:n] = data
        self._pos += n
        return n


def _clean(name: str) -> str:
    """A member name without ``./`` or a leading ``/``."""
    cleaned = posixpath.normpath(name.lstrip("/"))
    return "" if cleaned == "." else cleaned


class ArchiveSource:
    """Files by relative path (``/``-separated); a context manager that closes the archive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._spool: IO[bytes] | None = None
        self._fd: int | None = None
        if path.is_dir():
            return
        if not path.is_file():
            raise NotFoundError(f"{path}: no such file or directory")
        try:
            self._tar = self._open_tar(path)
        except (tarfile.TarError, OSError, EOFError) as exc:
            self.close()
            raise InvalidArgumentError(
                f"{path} is neither a directory nor a (gzipped) tar archive: {exc}"
            ) from exc
        for member in self._tar.getmembers():
            name = _clean(member.name)
            if name and (member.isfile() or member.issym() or member.islnk()):
                self._members[name] = member

    def _open_tar(self, path: Path) -> tarfile.TarFile:
        with path.open("rb") as probe:
            magic = probe.read(2)
        if magic != b"\x1f\x8b":
            self._fd = os.open(path, os.O_RDONLY)
            return tarfile.open(path, "r:")
        self._spool = tempfile.TemporaryFile(prefix="cargohold-import-")  # noqa: SIM115
        with gzip.open(path, "rb") as compressed:
            shutil.copyfileobj(compressed, self._spool, _COPY_CHUNK)
        self._spool.seek(0)
        self._fd = os.dup(self._spool.fileno())
        return tarfile.open(fileobj=self._spool, mode="r:")

    @property
    def is_archive(self) -> bool:
        """Whether this is a tar archive rather than a directory."""
        return self._tar is not None

    def has(self, name: str) -> bool:
        """Whether a regular file (or a link to one) of that name exists."""
        name = _clean(name)
        if self._tar is not None:
            return name in self._members
        return (self.path / name).is_file()

    def size(self, name: str) -> int:
        """The size in bytes of a file (NotFoundError when it is missing)."""
        name = _clean(name)
        if self._tar is None:
            try:
                return (self.path / name).stat().st_size
            except FileNotFoundError as exc:
                raise NotFoundError(f"{self.path}: no {name}") from exc
        member = self._member(name)
        return member.size

    def _member(self, name: str) -> tarfile.TarInfo:
        assert self._tar is not None
        member = self._members.get(name)
        if member is None:
            raise NotFoundError(f"{self.path}: no {name} in the archive")
        seen = 0
        while member.issym() or member.islnk():
            target = member.linkname
            if member.issym():
                target = posixpath.join(posixpath.dirname(name), target)
            name = _clean(target)
            following = self._members.get(name)
            seen += 1
            if following is None or seen > 32:
                raise NotFoundError(f"{self.path}: {member.name} links to missing {target}")
            member = following
        return member

    def open(self, name: str) -> IO[bytes]:
        """A binary file object of a file's bytes (close it after use)."""
        name = _clean(name)
        if self._tar is None:
            full = self.path / name
            if not full.resolve().is_relative_to(self.path.resolve()):
                raise InvalidArgumentError(f"{name} points outside {self.path}")
            try:
                return full.open("rb")
            except FileNotFoundError as exc:
                raise NotFoundError(f"{self.path}: no {name}") from exc
        member = self._member(name)
        if not member.isfile():
            raise NotFoundError(f"{self.path}: {name} is not a regular file")
        if member.sparse is not None:  # not contiguous in the tar (never in image archives)
            raise InvalidArgumentError(f"{self.path}: {name} is a sparse file, not supported")
        assert self._fd is not None
        return io.BufferedReader(_MemberReader(self._fd, member.offset_data, member.size))

    def read_small(self, name: str) -> bytes:
        """A whole (small) file; InvalidArgumentError beyond ``MAX_JSON_BYTES``."""
        size = self.size(name)
        if size > MAX_JSON_BYTES:
            raise InvalidArgumentError(f"{self.path}: {name} is {size} bytes, too large")
        with self.open(name) as handle:
            return handle.read()

    def close(self) -> None:
        """Close the archive and drop its decompressed copy."""
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def __enter__(self) -> ArchiveSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_source(path: str | os.PathLike[str]) -> ArchiveSource:
    """The files at ``path``: a directory, a tar archive or a gzipped tar archive."""
    return ArchiveSource(Path(path))
