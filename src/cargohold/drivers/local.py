"""``file:///path``: a local directory as an object store (the embedded default).

Objects are files under the root whose relative paths are the keys, so the layout mirrors the
object-store layout. Every write goes to a temporary file in ``<root>/.cargohold/tmp`` that is
fsynced and then renamed (or hard-linked, for create-only writes, which fails atomically if the
name exists) into place; the directory is fsynced after. Conditional writes (``IfMatch``) hold
an ``flock`` on a per-key lock file, so they are atomic across processes on one host.

Upload sessions live in ``<root>/.cargohold/uploads/<id>/`` (the target key plus one file per
part); completing one concatenates the parts into a temporary file that is linked into place.
Parts written with ``upload_part_at`` go straight into one ``data`` file at their offsets (a
marker file per part holds its etag); completing such a session moves the whole session folder
into ``tmp/`` under its lock, then links (or renames) its ``data`` file into place, so nothing
of the session can reach the committed file afterwards. Every write is issued in pieces of at
most 1 MiB (see ``_WRITE_PIECE``). Etags are ``<inode>-<mtime_ns>-<size>``: a rewritten file
always gets a new inode.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import SplitResult, unquote

from ..errors import (
    AlreadyExistsError,
    ContentError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from ..registry import OpenedDriver
from .base import (
    CREATE_ONLY,
    CreateOnly,
    DriverLimits,
    IfMatch,
    MiB,
    ObjectInfo,
    Part,
    Precondition,
    UploadInfo,
)
from .errors import ErrorTable, Failure, translate
from .options import option, parse_options

__all__ = ["LocalDriver", "LocalOptions", "from_url"]

_META = ".cargohold"
KEY_LOCK_SECONDS = 60.0
"""Longest wait for another writer's conditional write of the same key (each takes
milliseconds); beyond it the write fails with ``UnavailableError`` rather than wait on."""
_WRITE_PIECE = MiB
"""Largest single write(2): the kernel picks its page-cache folio size by the length of a
write, and on virtual machines whose idle memory the host has reclaimed, the largest folios
are the costly ones to touch first (docs/performance.md: one 8 MiB pwrite cost up to 8x the
CPU of eight 1 MiB ones)."""


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> int:
    """Write every byte of ``data`` at ``offset``, in pieces of at most ``_WRITE_PIECE``;
    return how many bytes that was."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        written = os.pwrite(fd, view[done : done + _WRITE_PIECE], offset + done)
        if written <= 0:
            raise OSError(errno.EIO, "pwrite wrote nothing")
        done += written
    return done


def _etag(st: os.stat_result) -> str:
    return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"


def _stamp(path: Path) -> None:
    """Set ``path``'s modification time to now, precisely.

    The kernel stamps files with a coarse clock (up to a tick behind the real time), so a
    file written after a client read its clock could otherwise look older than that reading;
    an object's modification time is its creation time to callers (``Info.created_at``).
    """
    now = time.time_ns()
    os.utime(path, ns=(now, now))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(exc: BaseException) -> Failure:
    """An OSError's errno name (``ENOENT``) and text."""
    number = getattr(exc, "errno", None) or 0
    text = getattr(exc, "strerror", None) or str(exc)
    return Failure(errno.errorcode.get(number, ""), None, str(text))


def _lock_within(fd: int, deadline: float, key: str) -> None:
    """An exclusive ``flock`` on ``fd``, polled (flock itself waits without a bound)."""
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise UnavailableError(
                    f"{key}: another writer held its lock for {KEY_LOCK_SECONDS:g}s"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.02)


TABLE = ErrorTable(
    read=_read,
    by_code=MappingProxyType(
        {
            "ENOENT": NotFoundError,
            "ENOTDIR": NotFoundError,
            "EEXIST": AlreadyExistsError,
            "EISDIR": InvalidArgumentError,
            "ENAMETOOLONG": InvalidArgumentError,
            "EACCES": PermissionDeniedError,
            "EPERM": PermissionDeniedError,
        }
    ),
)
"""The local driver's error table: errno → cargohold error."""


def _translate(exc: OSError, what: str) -> ContentError:
    return translate(exc, TABLE, what)


class LocalDriver:
    """Objects as files under one directory."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self._fsync = fsync
        self._tmp = root / _META / "tmp"
        self._uploads = root / _META / "uploads"
        self._locks = root / _META / "locks"
        for folder in (self._tmp, self._uploads, self._locks):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _translate(exc, str(folder)) from exc
        self._limits = DriverLimits(
            min_part_size=1,
            default_part_size=16 * MiB,
            max_part_size=1024 * 1024 * MiB,
            max_parts=10_000,
            default_concurrency=2,
        )

    @property
    def limits(self) -> DriverLimits:
        return self._limits

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts) or parts[0] == _META:
            raise InvalidArgumentError(f"invalid object key {key!r}")
        return self.root.joinpath(*parts)

    def _write_temp(self, chunks: Iterator[bytes] | Sequence[bytes]) -> Path:
        tmp = self._tmp / uuid.uuid4().hex
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        try:
            offset = 0
            for chunk in chunks:
                offset += _pwrite_all(fd, chunk, offset)
            if self._fsync:
                os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        finally:
            os.close(fd)
        return tmp

    @contextlib.contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        """An exclusive lock for conditional writes of ``key``, across processes.

        The lock file is removed by its holder before it unlocks, so lock files do not pile
        up; a waiter that then holds the lock of a removed file sees that its path now names
        another file (or none) and starts over on the current one.
        """
        path = self._locks / hashlib.sha256(key.encode()).hexdigest()
        deadline = time.monotonic() + KEY_LOCK_SECONDS
        while True:
            # The file object's own ``__exit__`` closes it, which releases the lock, on every
            # way out: an exception at any line of this function (an interrupt) included,
            # where a close in a ``finally`` here could itself be skipped.
            with open(path, "a+b") as handle:
                _lock_within(handle.fileno(), deadline, key)
                try:
                    current: int | None = os.stat(path).st_ino
                except FileNotFoundError:
                    current = None
                if current != os.fstat(handle.fileno()).st_ino:
                    continue  # that file was removed meanwhile: lock the current one
                try:
                    yield
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                return

    def _link(self, src: Path, path: Path, *, create_only: bool) -> None:
        """Put ``src`` at ``path`` (create-only with ``create_only``), creating its folders;
        a folder that an emptied key's clean-up removes meanwhile is made again."""
        for _ in range(8):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, FileNotFoundError):
                # It existed, then was pruned before mkdir could check it; or a folder above
                # it that mkdir had just made was pruned before it could make the next: again.
                continue
            try:
                if create_only:
                    os.link(src, path)
                else:
                    os.replace(src, path)
                return
            except FileExistsError as exc:
                raise AlreadyExistsError(f"{path.relative_to(self.root)} already exists") from exc
            except FileNotFoundError:
                if not src.exists():
                    raise
        raise UnavailableError(f"{path.relative_to(self.root)}: its folder keeps vanishing")

    def _prune(self, path: Path) -> None:
        """Remove the folders above a deleted key that it left empty (never the root)."""
        folder = path.parent
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _place(self, tmp: Path, path: Path, *, create_only: bool) -> str:
        """Move a finished temporary file to ``path`` (create-only with ``create_only``)."""
        _stamp(tmp)
        # The etag from the file about to be placed (a link or rename keeps inode, mtime and
        # size): the placed name may already be gone again when this returns.
        etag = _etag(tmp.stat())
        try:
            self._link(tmp, path, create_only=create_only)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if self._fsync:
            with contextlib.suppress(FileNotFoundError):  # emptied and removed meanwhile
                _fsync_dir(path.parent)
        return etag

    def put(
        self,
        key: str,
        data: bytes,
        *,
        precondition: Precondition | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        path = self._path(key)
        tmp = self._write_temp([data])
        if not isinstance(precondition, IfMatch):
            return self._place(tmp, path, create_only=precondition is CREATE_ONLY)
        with self._key_lock(key):
            try:
                current = _etag(path.stat())
            except FileNotFoundError:
                current = None
            if current != precondition.etag:
                os.unlink(tmp)
                raise FailedPreconditionError(f"{key}: etag does not match")
            return self._place(tmp, path, create_only=False)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise _translate(exc, key) from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        except OSError as exc:
            raise _translate(exc, key) from exc

    def _info(self, key: str, st: os.stat_result) -> ObjectInfo:
        modified = datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC)
        return ObjectInfo(key, st.st_size, modified, _etag(st), None)

    def head(self, key: str) -> ObjectInfo:
        try:
            path = self._path(key)
            st = path.stat()
        except OSError as exc:
            raise _translate(exc, key) from exc
        if not path.is_file():
            raise NotFoundError(f"{key} not found")
        return self._info(key, st)

    def list(self, prefix: str, *, metadata: bool = False) -> Iterator[ObjectInfo]:
        directory, _, _ = prefix.rpartition("/")
        start = self.root / directory if directory else self.root
        keys: list[tuple[str, os.stat_result]] = []
        for folder, dirs, files in os.walk(start):
            rel = os.path.relpath(folder, self.root)
            if rel == ".":
                dirs[:] = [d for d in dirs if d != _META]
                rel = ""
            for name in files:
                key = f"{rel}/{name}" if rel else name
                if key.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        keys.append((key, os.stat(os.path.join(folder, name))))
        keys.sort(key=lambda item: item[0])
        for key, st in keys:
            yield self._info(key, st)

    def delete(self, key: str, *, precondition: IfMatch | None = None) -> None:
        path = self._path(key)
        if precondition is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            self._prune(path)
            return
        with self._key_lock(key):
            try:
                current = _etag(path.stat())
            except FileNotFoundError:
                return
            if current != precondition.etag:
                raise FailedPreconditionError(f"{key}: etag does not match")
            with contextlib.suppress(FileNotFoundError):  # an unconditional delete won
                os.unlink(path)
        self._prune(path)

    def copy(self, src: str, dst: str, *, precondition: CreateOnly | None = None) -> str:
        """A hard link where possible: objects are never changed in place (every write
        renames a new file over the name), so a link is as good as a copy and costs no I/O."""
        tmp = self._tmp / uuid.uuid4().hex
        source = self._path(src)
        try:
            try:
                os.link(source, tmp)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                shutil.copyfile(source, tmp)
                if self._fsync:
                    with open(tmp, "rb") as handle:
                        os.fsync(handle.fileno())
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise _translate(exc, src) from exc
        return self._place(tmp, self._path(dst), create_only=precondition is CREATE_ONLY)

    def _session(self, key: str, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise NotFoundError(f"upload {upload_id!r} not found")
        folder = self._uploads / upload_id
        try:
            target = (folder / "key").read_text()
        except FileNotFoundError as exc:
            raise NotFoundError(f"upload {upload_id} for {key} not found") from exc
        if target != key:
            raise NotFoundError(f"upload {upload_id} is not for {key}")
        return folder

    def start_upload(self, key: str) -> str:
        self._path(key)
        upload_id = uuid.uuid4().hex
        folder = self._uploads / upload_id
        folder.mkdir()
        (folder / "key").write_text(key)
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        folder = self._session(key, upload_id)
        tmp = self._write_temp([data])
        etag = _etag(tmp.stat())  # a rename keeps it; the session may be aborted right after
        path = folder / f"{number:05d}"
        try:
            os.replace(tmp, path)
        except FileNotFoundError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise NotFoundError(f"upload {upload_id} was aborted") from exc
        return Part(number, len(data), etag)

    def upload_part_at(
        self, key: str, upload_id: str, number: int, offset: int, data: bytes
    ) -> Part:
        """Write the part straight into the session's data file; completing needs no copy."""
        folder = self._session(key, upload_id)
        etag = f"at-{offset}-{len(data)}-{uuid.uuid4().hex}"
        # Data and marker are written under one lock, so a stale writer replacing a part
        # always leaves its own marker (and etag) behind, never ours over its bytes.
        with self._session_lock(folder):
            try:
                fd = os.open(folder / "data", os.O_WRONLY | os.O_CREAT, 0o644)
            except FileNotFoundError as exc:  # completed or aborted while we waited
                raise NotFoundError(f"upload {upload_id} for {key} not found") from exc
            try:
                _pwrite_all(fd, data, offset)
                if self._fsync:
                    os.fdatasync(fd)
            finally:
                os.close(fd)
            marker = self._write_temp([etag.encode()])
            os.replace(marker, folder / f"{number:05d}.at")
        return Part(number, len(data), etag)

    @contextlib.contextmanager
    def _session_lock(self, folder: Path) -> Iterator[None]:
        try:
            handle = open(folder / "lock", "a+b")  # noqa: SIM115 - closed below
        except FileNotFoundError as exc:
            raise NotFoundError(f"upload {folder.name} was aborted") from exc
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield

    def list_parts(self, key: str, upload_id: str) -> builtins.list[Part]:
        folder = self._session(key, upload_id)
        parts = []
        for entry in sorted(folder.iterdir()):
            if entry.name.isdigit():
                st = entry.stat()
                parts.append(Part(int(entry.name), st.st_size, _etag(st)))
            elif entry.name.endswith(".at") and entry.name[:-3].isdigit():
                etag = entry.read_text()
                parts.append(Part(int(entry.name[:-3]), int(etag.split("-")[2]), etag))
        return parts

    def _complete_positional(
        self, key: str, folder: Path, parts: Sequence[Part], *, create_only: bool
    ) -> str:
        path = self._path(key)
        with self._session_lock(folder):
            total = 0
            for part in parts:
                try:
                    current = (folder / f"{part.number:05d}.at").read_text()
                except FileNotFoundError:
                    current = None
                if current != part.etag or part.etag.split("-")[1] != str(total):
                    raise FailedPreconditionError(
                        f"part {part.number} of {key} is missing or changed"
                    )
                total += part.size
            try:
                with open(folder / "data", "r+b") as handle:
                    handle.truncate(total)
                    if self._fsync:
                        os.fsync(handle.fileno())
            except FileNotFoundError as exc:
                raise NotFoundError(f"upload {folder.name} for {key} has no data") from exc
            # Take the whole session out of reach before its file becomes the blob: a stale
            # writer of this session (waiting for the lock) or a crash at any point after this
            # line can then never write into, or resume onto, the committed blob's file.
            done = self._tmp / f"done-{uuid.uuid4().hex}"
            os.rename(folder, done)
        _stamp(done / "data")
        etag = _etag((done / "data").stat())
        try:
            self._link(done / "data", path, create_only=create_only)
        finally:
            shutil.rmtree(done, ignore_errors=True)
        if self._fsync:
            with contextlib.suppress(FileNotFoundError):
                _fsync_dir(path.parent)
        return etag

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[Part],
        *,
        precondition: CreateOnly | None = None,
    ) -> str:
        folder = self._session(key, upload_id)
        create_only = precondition is CREATE_ONLY
        if parts and all(p.etag.startswith("at-") for p in parts):
            return self._complete_positional(key, folder, parts, create_only=create_only)
        paths = []
        for part in parts:
            path = folder / f"{part.number:05d}"
            try:
                current = _etag(path.stat())
            except FileNotFoundError:
                current = None
            if current != part.etag:
                raise FailedPreconditionError(f"part {part.number} of {key} is missing or changed")
            paths.append(path)
        tmp = self._tmp / uuid.uuid4().hex
        with open(tmp, "wb") as out:
            for path in paths:
                with open(path, "rb") as src:
                    shutil.copyfileobj(src, out, 8 * MiB)
            if self._fsync:
                out.flush()
                os.fsync(out.fileno())
        etag = self._place(tmp, self._path(key), create_only=create_only)
        shutil.rmtree(folder, ignore_errors=True)
        return etag

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            folder = self._session(key, upload_id)
        except NotFoundError:
            return
        shutil.rmtree(folder, ignore_errors=True)

    def list_uploads(self, prefix: str) -> Iterator[UploadInfo]:
        found = []
        for folder in self._uploads.iterdir():
            with contextlib.suppress(FileNotFoundError):
                key = (folder / "key").read_text()
                if key.startswith(prefix):
                    started = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
                    found.append(UploadInfo(key, folder.name, started))
        found.sort(key=lambda info: (info.key, info.upload_id))
        yield from found

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class LocalOptions:
    """The URL options of ``file://``."""

    fsync: bool = option(True)
    """Flush files and folders to disk before a write returns (0 for tests only)."""


def from_url(url: SplitResult, options: dict[str, Any]) -> OpenedDriver:
    """``file:///absolute/path`` (option ``fsync=0`` turns off fsync, for tests only)."""
    if url.netloc not in ("", "localhost"):
        raise InvalidArgumentError(f"file:// URLs name a local path, not a host: {url.netloc!r}")
    path = unquote(url.path)
    if not path.startswith("/"):
        raise InvalidArgumentError(f"file:// needs an absolute path, got {path!r}")
    if "\x00" in path:
        raise InvalidArgumentError(f"file:// path contains a NUL character: {path!r}")
    fsync = parse_options(LocalOptions, options, "file").fsync
    root = Path(path)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _translate(exc, str(root)) from exc
    return OpenedDriver(LocalDriver(root, fsync=fsync), "")
