"""A wrapper that adds cross-cutting concerns to any driver: key checks and call metrics.

``open_store`` wraps every driver in a ``MeteredDriver``. It rejects malformed keys before any
request is sent, and counts calls per operation (``driver.calls``), which is what the request
budgets in the conformance suite are asserted against. Attributes it does not define (a
driver's own client, say) are looked up on the wrapped driver.
"""

from __future__ import annotations

import builtins
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import InvalidArgumentError
from .base import (
    Driver,
    DriverLimits,
    MetadataWriter,
    ObjectInfo,
    Part,
    PositionalParts,
    UploadInfo,
)

__all__ = ["MeteredDriver"]

MAX_KEY_BYTES = 1024


def check_key(key: str) -> str:
    """Keys are non-empty, relative, at most 1024 bytes, without empty/``.``/``..`` parts."""
    if not isinstance(key, str) or not key:
        raise InvalidArgumentError("object key must be a non-empty string")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidArgumentError(f"object key is longer than {MAX_KEY_BYTES} bytes")
    if any(part in ("", ".", "..") for part in key.split("/")) or "\x00" in key:
        raise InvalidArgumentError(f"malformed object key {key[:200]!r}")
    return key


class MeteredDriver:
    """Validates keys and counts calls, then delegates to ``inner``."""

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _count(self, op: str) -> None:
        with self._lock:
            self.calls[op] += 1

    def reset_calls(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.calls.clear()

    @property
    def limits(self) -> DriverLimits:
        return self.inner.limits

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        self._count("put")
        return self.inner.put(
            check_key(key), data, if_none_match=if_none_match, if_match=if_match, metadata=metadata
        )

    def get(self, key: str) -> bytes:
        self._count("get")
        return self.inner.get(check_key(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        self._count("get_range")
        return self.inner.get_range(check_key(key), offset, length)

    def head(self, key: str) -> ObjectInfo:
        self._count("head")
        return self.inner.head(check_key(key))

    def list(self, prefix: str, *, metadata: bool = False) -> Iterator[ObjectInfo]:
        self._count("list")
        return self.inner.list(prefix, metadata=metadata)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        self._count("delete")
        self.inner.delete(check_key(key), if_match=if_match)

    def copy(self, src: str, dst: str, *, if_none_match: bool = False) -> str:
        self._count("copy")
        return self.inner.copy(check_key(src), check_key(dst), if_none_match=if_none_match)

    def start_upload(self, key: str) -> str:
        self._count("start_upload")
        return self.inner.start_upload(check_key(key))

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        self._count("upload_part")
        return self.inner.upload_part(check_key(key), upload_id, number, data)

    def upload_part_at(
        self, key: str, upload_id: str, number: int, offset: int, data: bytes
    ) -> Part:
        """Positional upload where the driver supports it, else a plain ``upload_part``."""
        if isinstance(self.inner, PositionalParts):
            self._count("upload_part")
            return self.inner.upload_part_at(check_key(key), upload_id, number, offset, data)
        return self.upload_part(key, upload_id, number, data)

    def list_parts(self, key: str, upload_id: str) -> builtins.list[Part]:
        self._count("list_parts")
        return self.inner.list_parts(check_key(key), upload_id)

    def complete_upload(
        self, key: str, upload_id: str, parts: Sequence[Part], *, if_none_match: bool = False
    ) -> str:
        self._count("complete_upload")
        return self.inner.complete_upload(
            check_key(key), upload_id, parts, if_none_match=if_none_match
        )

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._count("abort_upload")
        self.inner.abort_upload(check_key(key), upload_id)

    def list_uploads(self, prefix: str) -> Iterator[UploadInfo]:
        self._count("list_uploads")
        return self.inner.list_uploads(prefix)

    def set_metadata(
        self, key: str, metadata: Mapping[str, str], *, if_match: str | None = None
    ) -> str:
        self._count("set_metadata")
        if not isinstance(self.inner, MetadataWriter):
            raise InvalidArgumentError("this driver cannot change metadata in place")
        return self.inner.set_metadata(check_key(key), metadata, if_match=if_match)

    def close(self) -> None:
        self.inner.close()
