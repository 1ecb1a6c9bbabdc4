"""``memory://name``: a process-local object store, thread-safe.

Stores opened with the same name in one process share their objects. It follows the driver
protocol to the letter (create-only puts, etag checks, upload sessions with a small minimum
part size), so the conformance suite exercises the store's multipart paths cheaply.
"""

from __future__ import annotations

import builtins
import itertools
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import SplitResult

from ..errors import AlreadyExistsError, FailedPreconditionError, NotFoundError
from ..registry import OpenedDriver
from .base import (
    CREATE_ONLY,
    CreateOnly,
    DriverLimits,
    IfMatch,
    ObjectInfo,
    Part,
    Precondition,
    UploadInfo,
)
from .options import option, parse_options

__all__ = ["MemoryDriver", "MemoryOptions", "from_url"]

_counter = itertools.count(1)


@dataclass
class _Object:
    data: bytes
    modified: datetime
    etag: str
    metadata: dict[str, str]


@dataclass
class _Upload:
    key: str
    initiated: datetime
    parts: dict[int, tuple[bytes, str]] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


def _etag() -> str:
    return f"m{next(_counter)}"


class _Space:
    """The shared state behind every driver opened with one name."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, _Object] = {}
        self.uploads: dict[str, _Upload] = {}


_spaces: dict[str, _Space] = {}
_spaces_lock = threading.Lock()


class MemoryDriver:
    """Objects in a dict, guarded by one lock."""

    def __init__(self, name: str, *, min_part_size: int = 64 * 1024) -> None:
        with _spaces_lock:
            self._space = _spaces.setdefault(name, _Space())
        self._limits = DriverLimits(
            min_part_size=min_part_size,
            default_part_size=max(min_part_size, 256 * 1024),
            metadata_bytes=8 * 1024,
            metadata_mutable=True,
            metadata_in_listing=True,
        )

    @property
    def limits(self) -> DriverLimits:
        return self._limits

    def _check_match(self, key: str, precondition: Precondition | None) -> None:
        if not isinstance(precondition, IfMatch):
            return
        current = self._space.objects.get(key)
        if current is None or current.etag != precondition.etag:
            raise FailedPreconditionError(f"{key}: etag does not match")

    def put(
        self,
        key: str,
        data: bytes,
        *,
        precondition: Precondition | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        with self._space.lock:
            if precondition is CREATE_ONLY and key in self._space.objects:
                raise AlreadyExistsError(f"{key} already exists")
            self._check_match(key, precondition)
            etag = _etag()
            self._space.objects[key] = _Object(bytes(data), _now(), etag, dict(metadata or {}))
            return etag

    def _get(self, key: str) -> _Object:
        obj = self._space.objects.get(key)
        if obj is None:
            raise NotFoundError(f"{key} not found")
        return obj

    def get(self, key: str) -> bytes:
        with self._space.lock:
            return self._get(key).data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        with self._space.lock:
            return self._get(key).data[offset : offset + length]

    def head(self, key: str) -> ObjectInfo:
        with self._space.lock:
            obj = self._get(key)
            return ObjectInfo(key, len(obj.data), obj.modified, obj.etag, dict(obj.metadata))

    def list(self, prefix: str, *, metadata: bool = False) -> Iterator[ObjectInfo]:
        with self._space.lock:
            found = [
                ObjectInfo(
                    k, len(o.data), o.modified, o.etag, dict(o.metadata) if metadata else None
                )
                for k, o in self._space.objects.items()
                if k.startswith(prefix)
            ]
        found.sort(key=lambda info: info.key)
        yield from found

    def delete(self, key: str, *, precondition: IfMatch | None = None) -> None:
        with self._space.lock:
            if key not in self._space.objects:
                return
            self._check_match(key, precondition)
            del self._space.objects[key]

    def copy(self, src: str, dst: str, *, precondition: CreateOnly | None = None) -> str:
        with self._space.lock:
            source = self._get(src)
            if precondition is CREATE_ONLY and dst in self._space.objects:
                raise AlreadyExistsError(f"{dst} already exists")
            etag = _etag()
            self._space.objects[dst] = _Object(source.data, _now(), etag, dict(source.metadata))
            return etag

    def set_metadata(
        self, key: str, metadata: Mapping[str, str], *, precondition: IfMatch | None = None
    ) -> str:
        with self._space.lock:
            self._check_match(key, precondition)  # a gone object fails an IfMatch
            obj = self._get(key)
            obj.metadata = dict(metadata)
            obj.modified = _now()
            obj.etag = _etag()
            return obj.etag

    def start_upload(self, key: str) -> str:
        upload_id = uuid.uuid4().hex
        with self._space.lock:
            self._space.uploads[upload_id] = _Upload(key, _now())
        return upload_id

    def _upload(self, key: str, upload_id: str) -> _Upload:
        upload = self._space.uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise NotFoundError(f"upload {upload_id} for {key} not found")
        return upload

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        etag = _etag()
        with self._space.lock:
            self._upload(key, upload_id).parts[number] = (bytes(data), etag)
        return Part(number, len(data), etag)

    def list_parts(self, key: str, upload_id: str) -> builtins.list[Part]:
        with self._space.lock:
            upload = self._upload(key, upload_id)
            return [Part(n, len(d), e) for n, (d, e) in sorted(upload.parts.items())]

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[Part],
        *,
        precondition: CreateOnly | None = None,
    ) -> str:
        with self._space.lock:
            upload = self._upload(key, upload_id)
            chunks = []
            for index, part in enumerate(parts):
                held = upload.parts.get(part.number)
                if held is None or held[1] != part.etag:
                    raise FailedPreconditionError(f"part {part.number} of {key} is missing")
                if index < len(parts) - 1 and len(held[0]) < self._limits.min_part_size:
                    raise FailedPreconditionError(f"part {part.number} of {key} is too small")
                chunks.append(held[0])
            if precondition is CREATE_ONLY and key in self._space.objects:
                raise AlreadyExistsError(f"{key} already exists")
            etag = _etag()
            self._space.objects[key] = _Object(b"".join(chunks), _now(), etag, {})
            del self._space.uploads[upload_id]
            return etag

    def abort_upload(self, key: str, upload_id: str) -> None:
        with self._space.lock:
            upload = self._space.uploads.get(upload_id)
            if upload is not None and upload.key == key:
                del self._space.uploads[upload_id]

    def list_uploads(self, prefix: str) -> Iterator[UploadInfo]:
        with self._space.lock:
            found = [
                UploadInfo(u.key, uid, u.initiated)
                for uid, u in self._space.uploads.items()
                if u.key.startswith(prefix)
            ]
        found.sort(key=lambda info: (info.key, info.upload_id))
        yield from found

    def close(self) -> None:
        """Nothing to release; the objects stay for other stores of the same name."""


@dataclass(frozen=True)
class MemoryOptions:
    """The URL options of ``memory://``."""

    min_part_size: int = option(64 * 1024, minimum=1, size=True)
    """Smallest part but the last (small, so that tests reach multipart paths cheaply)."""


def from_url(url: SplitResult, options: dict[str, Any]) -> OpenedDriver:
    """``memory://name/prefix`` (options: ``min_part_size``)."""
    opts = parse_options(MemoryOptions, options, "memory")
    driver = MemoryDriver(url.netloc, min_part_size=opts.min_part_size)
    return OpenedDriver(driver, url.path.strip("/"))
