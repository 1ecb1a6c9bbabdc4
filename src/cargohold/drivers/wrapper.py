"""A wrapper that adds cross-cutting concerns to any driver: key checks and call metrics.

``open_store`` wraps every driver in a ``MeteredDriver``. It rejects malformed keys before any
request is sent, and counts calls per operation (``driver.calls``), which is what the request
budgets in the conformance suite are asserted against. An optional ``observer`` (set by
``cargohold serve`` when metrics are on) is told when each request starts and how it ended.
It has no attributes of its own beyond these: the wrapped driver is ``inner``.
"""

from __future__ import annotations

import builtins
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast

from ..errors import ContentError, InvalidArgumentError
from .base import (
    CreateOnly,
    Driver,
    DriverLimits,
    IfMatch,
    MetadataWriter,
    ObjectInfo,
    Part,
    PositionalParts,
    Precondition,
    UploadInfo,
)

__all__ = ["DriverObserver", "MeteredDriver", "outcome_of"]

MAX_KEY_BYTES = 1024
_T = TypeVar("_T")


class DriverObserver(Protocol):
    """Told about every driver request: ``started`` before it, ``finished`` after it."""

    def started(self, operation: str) -> None:
        """A request of ``operation`` (``put``, ``upload_part``, ...) is about to be sent."""

    def finished(self, operation: str, outcome: str, seconds: float) -> None:
        """It ended with ``outcome`` (``ok``, ``not_found``, ..., ``error``) after ``seconds``."""


def outcome_of(exc: BaseException) -> str:
    """``ok``-style name of an error: its ContentError category in snake case, else ``error``."""
    if not isinstance(exc, ContentError):
        return "error"
    name = type(exc).__name__.removesuffix("Error") or "content"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _Call:
    """One driver request: tells the observer (if any) and marks any ContentError it raises
    with the operation, key and driver (a class, not a generator: it runs on every call)."""

    __slots__ = ("_driver", "_key", "_observer", "_operation", "_start")

    def __init__(
        self, observer: DriverObserver | None, driver: str, operation: str, key: str | None
    ) -> None:
        self._observer = observer
        self._driver = driver
        self._operation = operation
        self._key = key
        self._start = 0.0

    def __enter__(self) -> None:
        if self._observer is not None:
            self._observer.started(self._operation)
            self._start = time.perf_counter()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if isinstance(exc, ContentError) and exc.operation is None:
            exc.operation, exc.key, exc.driver = self._operation, self._key, self._driver
        if self._observer is not None:
            ok = exc is None or isinstance(exc, GeneratorExit)
            outcome = "ok" if ok else outcome_of(exc)  # type: ignore[arg-type]
            self._observer.finished(self._operation, outcome, time.perf_counter() - self._start)


def check_key(key: str) -> str:
    """Keys are non-empty, relative, at most 1024 bytes, without empty/``.``/``..`` parts."""
    if not isinstance(key, str) or not key:
        raise InvalidArgumentError("object key must be a non-empty string")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidArgumentError(f"object key is longer than {MAX_KEY_BYTES} bytes")
    if any(part in ("", ".", "..") for part in key.split("/")) or "\x00" in key:
        raise InvalidArgumentError(f"malformed object key {key[:200]!r}")
    return key


def _create_only(precondition: Precondition | None) -> CreateOnly | None:
    if precondition is not None and not isinstance(precondition, CreateOnly):
        raise InvalidArgumentError("this operation takes only a create-only precondition")
    return precondition


def _if_match(precondition: Precondition | None) -> IfMatch | None:
    if precondition is not None and not isinstance(precondition, IfMatch):
        raise InvalidArgumentError("this operation takes only an IfMatch precondition")
    return precondition


class MeteredDriver:
    """Validates keys and counts calls, then delegates to ``inner``.

    ``MeteredDriver(inner)`` builds an instance of the subclass that has exactly ``inner``'s
    optional capabilities, so ``isinstance(wrapped, MetadataWriter)`` (or ``PositionalParts``)
    holds only when the inner driver has it; ``metadata_writer()`` and ``positional_parts()``
    are the typed way to ask. The wrapped driver itself is ``inner`` (its SDK client, say).
    """

    def __new__(cls, inner: Driver) -> MeteredDriver:
        if cls is MeteredDriver:
            metadata = isinstance(inner, MetadataWriter)
            positional = isinstance(inner, PositionalParts)
            cls = _WRAPPERS[metadata, positional]
        return super().__new__(cls)

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._name = type(inner).__name__
        self.observer: DriverObserver | None = None
        """Told about each request when set (``cargohold serve --metrics-address``)."""

    def _count(self, op: str) -> None:
        with self._lock:
            self.calls[op] += 1

    def _call(self, operation: str, key: str | None = None) -> _Call:
        return _Call(self.observer, self._name, operation, key)

    def _call_iter(self, operation: str, prefix: str, items: Iterator[_T]) -> Iterator[_T]:
        """Listings send their requests while they are iterated: the iteration is the call."""
        with self._call(operation, prefix):
            yield from items

    def reset_calls(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.calls.clear()

    def metadata_writer(self) -> MetadataWriter | None:
        """This wrapper as a ``MetadataWriter`` if the inner driver is one, else ``None``."""
        return self if isinstance(self, MetadataWriter) else None

    def positional_parts(self) -> PositionalParts | None:
        """This wrapper as ``PositionalParts`` if the inner driver has them, else ``None``."""
        return self if isinstance(self, PositionalParts) else None

    @property
    def limits(self) -> DriverLimits:
        return self.inner.limits

    def put(
        self,
        key: str,
        data: bytes,
        *,
        precondition: Precondition | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        self._count("put")
        key = check_key(key)
        if precondition is not None and not isinstance(precondition, CreateOnly | IfMatch):
            raise InvalidArgumentError(f"not a precondition: {precondition!r}")
        with self._call("put", key):
            return self.inner.put(key, data, precondition=precondition, metadata=metadata)

    def get(self, key: str) -> bytes:
        self._count("get")
        key = check_key(key)
        with self._call("get", key):
            return self.inner.get(key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        self._count("get_range")
        key = check_key(key)
        with self._call("get_range", key):
            return self.inner.get_range(key, offset, length)

    def head(self, key: str) -> ObjectInfo:
        self._count("head")
        key = check_key(key)
        with self._call("head", key):
            return self.inner.head(key)

    def list(self, prefix: str, *, metadata: bool = False) -> Iterator[ObjectInfo]:
        self._count("list")
        return self._call_iter("list", prefix, self.inner.list(prefix, metadata=metadata))

    def delete(self, key: str, *, precondition: IfMatch | None = None) -> None:
        self._count("delete")
        key = check_key(key)
        condition = _if_match(precondition)
        with self._call("delete", key):
            self.inner.delete(key, precondition=condition)

    def copy(
        self,
        src: str,
        dst: str,
        *,
        precondition: CreateOnly | None = None,
    ) -> str:
        self._count("copy")
        src, dst = check_key(src), check_key(dst)
        condition = _create_only(precondition)
        with self._call("copy", f"{src} -> {dst}"):
            return self.inner.copy(src, dst, precondition=condition)

    def start_upload(self, key: str) -> str:
        self._count("start_upload")
        key = check_key(key)
        with self._call("start_upload", key):
            return self.inner.start_upload(key)

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        self._count("upload_part")
        key = check_key(key)
        with self._call("upload_part", key):
            return self.inner.upload_part(key, upload_id, number, data)

    def upload_part_positioned(
        self, key: str, upload_id: str, number: int, offset: int, data: bytes
    ) -> Part:
        """Upload part ``number``, which starts at byte ``offset``: positionally where the
        driver can (``PositionalParts``), else as a plain ``upload_part``."""
        if isinstance(self.inner, PositionalParts):
            self._count("upload_part")
            key = check_key(key)
            with self._call("upload_part", key):
                return self.inner.upload_part_at(key, upload_id, number, offset, data)
        return self.upload_part(key, upload_id, number, data)

    def list_parts(self, key: str, upload_id: str) -> builtins.list[Part]:
        self._count("list_parts")
        key = check_key(key)
        with self._call("list_parts", key):
            return self.inner.list_parts(key, upload_id)

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[Part],
        *,
        precondition: CreateOnly | None = None,
    ) -> str:
        self._count("complete_upload")
        key = check_key(key)
        condition = _create_only(precondition)
        with self._call("complete_upload", key):
            return self.inner.complete_upload(key, upload_id, parts, precondition=condition)

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._count("abort_upload")
        key = check_key(key)
        with self._call("abort_upload", key):
            self.inner.abort_upload(key, upload_id)

    def list_uploads(self, prefix: str) -> Iterator[UploadInfo]:
        self._count("list_uploads")
        return self._call_iter("list_uploads", prefix, self.inner.list_uploads(prefix))

    def close(self) -> None:
        self.inner.close()


class _MeteredMetadataWriter(MeteredDriver):
    """A wrapper around a driver that is a ``MetadataWriter``."""

    def set_metadata(
        self,
        key: str,
        metadata: Mapping[str, str],
        *,
        precondition: IfMatch | None = None,
    ) -> str:
        """Replace all user metadata of ``key``; see ``MetadataWriter``."""
        self._count("set_metadata")
        key = check_key(key)
        condition = _if_match(precondition)
        writer = cast(MetadataWriter, self.inner)
        with self._call("set_metadata", key):
            return writer.set_metadata(key, metadata, precondition=condition)


class _MeteredPositional(MeteredDriver):
    """A wrapper around a driver with ``PositionalParts``."""

    def upload_part_at(
        self, key: str, upload_id: str, number: int, offset: int, data: bytes
    ) -> Part:
        """Upload part ``number`` at byte ``offset``; see ``PositionalParts``."""
        return self.upload_part_positioned(key, upload_id, number, offset, data)


class _MeteredMetadataPositional(_MeteredMetadataWriter, _MeteredPositional):
    """A wrapper around a driver with both optional capabilities."""


# (inner is a MetadataWriter, inner has PositionalParts) -> the wrapper class
_WRAPPERS: dict[tuple[bool, bool], type[MeteredDriver]] = {
    (False, False): MeteredDriver,
    (True, False): _MeteredMetadataWriter,
    (False, True): _MeteredPositional,
    (True, True): _MeteredMetadataPositional,
}
