"""Labels: validation, the label record, and where the record is kept on a driver.

A blob's *label record* holds its labels and the times the store recorded (created, updated).
A blob without a record has no labels and takes both times from its object's write time (blobs
are immutable, so that is the commit time).

Where the record lives depends on the driver:

* **inline**: drivers whose metadata is mutable and carried by listings (Azure, GCS, memory)
  keep the record in the blob object's metadata, as base64url JSON under one key, so ``walk``
  is answered by list requests alone. A record too large for the metadata budget spills to a
  sidecar object and leaves a marker in the metadata.
* **sidecar**: other drivers (S3, the local directory) keep it in ``<blob key>.labels``, which
  sorts right after the blob, so a listing of ``blobs/`` shows which blobs have one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .drivers.base import CREATE_ONLY, Driver, IfMatch, MetadataWriter, ObjectInfo
from .errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from .layout import SIDECAR_SUFFIX

__all__ = [
    "LabelRecord",
    "LabelStore",
    "apply_update",
    "check_fieldpaths",
    "validate_labels",
]

MAX_LABEL_BYTES = 4096
MAX_LABEL_SET_BYTES = 16 * 1024 * 1024
"""One blob's label keys and values together, in UTF-8 bytes (a quarter of the largest message)."""
_INLINE_KEY = "cholabels"
_SPILL_KEY = "chospill"
_TIME_KEY = "chotime"
_UPDATE_ATTEMPTS = 8


def validate_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """Check every label (non-empty key, key + value at most 4096 UTF-8 bytes) and their total."""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidArgumentError(f"labels must be a mapping, got {type(labels).__name__}")
    checked: dict[str, str] = {}
    total = 0
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentError("label keys and values must be strings")
        if not key:
            raise InvalidArgumentError("label key must not be empty")
        try:
            size = len(key.encode()) + len(value.encode())
        except UnicodeEncodeError as exc:
            raise InvalidArgumentError(f"label {key[:80]!r} is not valid UTF-8") from exc
        if size > MAX_LABEL_BYTES:
            raise InvalidArgumentError(
                f"label {key[:80]!r}: key + value is {size} bytes, the limit is {MAX_LABEL_BYTES}"
            )
        total += size
        if total > MAX_LABEL_SET_BYTES:
            raise InvalidArgumentError(
                f"labels exceed {MAX_LABEL_SET_BYTES} bytes (keys and values together)"
            )
        checked[key] = value
    return checked


def check_fieldpaths(fieldpaths: tuple[str, ...]) -> None:
    """Only ``labels`` and ``labels.<key>`` can be updated; anything else is InvalidArgument."""
    for path in fieldpaths:
        if not isinstance(path, str) or not (
            path == "labels" or (path.startswith("labels.") and len(path) > len("labels."))
        ):
            raise InvalidArgumentError(
                f"cannot update field {str(path)[:200]!r}: only 'labels' and 'labels.<key>' "
                "can change"
            )


def apply_update(
    current: Mapping[str, str], wanted: Mapping[str, str], fieldpaths: tuple[str, ...]
) -> dict[str, str]:
    """The label set after ``update(info, *fieldpaths)`` (containerd's rules)."""
    check_fieldpaths(fieldpaths)
    if not fieldpaths:
        return dict(wanted)
    result = dict(current)
    for path in fieldpaths:
        if path == "labels":
            result = dict(wanted)
            continue
        key = path[len("labels.") :]
        if key in wanted:
            result[key] = wanted[key]
        else:
            result.pop(key, None)
    return validate_labels(result)


@dataclass(frozen=True)
class LabelRecord:
    """The labels of one blob and the times the store recorded for it."""

    created: datetime
    updated: datetime
    labels: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        body = {
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
            "labels": self.labels,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> LabelRecord:
        try:
            body = json.loads(raw)
            return cls(
                datetime.fromisoformat(body["created"]).astimezone(UTC),
                datetime.fromisoformat(body["updated"]).astimezone(UTC),
                {str(k): str(v) for k, v in body["labels"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FailedPreconditionError("a label record in the store is corrupt") from exc


class LabelStore:
    """Reads and writes label records on a driver, inline or in sidecars."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        limits = driver.limits
        self.inline = (
            limits.metadata_bytes > 0
            and limits.metadata_mutable
            and limits.metadata_in_listing
            and isinstance(driver, MetadataWriter)
        )
        self._budget = limits.metadata_bytes - 64

    def wants_listing_metadata(self) -> bool:
        return self.inline

    def needs_request(self, obj: ObjectInfo, has_sidecar: bool | None) -> bool:
        """Whether ``from_object`` must read a sidecar for this blob (a request of its own)."""
        if self.inline:
            return _SPILL_KEY in (obj.metadata or {}) and _INLINE_KEY not in (obj.metadata or {})
        return has_sidecar is not False

    def from_object(self, obj: ObjectInfo, has_sidecar: bool | None) -> LabelRecord | None:
        """The record of a blob seen by head or list.

        ``has_sidecar`` tells whether a listing showed a sidecar; ``None`` means unknown (head).
        """
        if self.inline:
            meta = obj.metadata or {}
            if _INLINE_KEY in meta:
                return LabelRecord.decode(base64.urlsafe_b64decode(meta[_INLINE_KEY]))
            if _SPILL_KEY not in meta:
                return None
        elif has_sidecar is False:
            return None
        return self.sidecar_record(obj.key)

    def sidecar_record(self, blob_key: str) -> LabelRecord | None:
        """The record in the sidecar of the blob at ``blob_key``; None if it has none."""
        try:
            return LabelRecord.decode(self._driver.get(blob_key + SIDECAR_SUFFIX))
        except NotFoundError:
            return None

    def commit_metadata(self, when: datetime, record: LabelRecord | None) -> dict[str, str]:
        """Metadata for a blob published by a single put: its exact commit time (object times
        can be coarse: S3 and Azure keep whole seconds) and, where labels live inline, its
        record. Empty where the driver keeps no metadata."""
        if self._driver.limits.metadata_bytes <= 0:
            return {}
        metadata = {_TIME_KEY: str(int(when.timestamp() * 1_000_000))}
        if record is not None:
            metadata.update(self.inline_metadata(record) or {})
        return metadata

    @staticmethod
    def object_time(obj: ObjectInfo) -> datetime:
        """When a blob without a label record was committed: the exact time it was published
        with, where it carries one, else its object's write time."""
        raw = (obj.metadata or {}).get(_TIME_KEY)
        if raw is not None and raw.isdigit():
            return datetime.fromtimestamp(int(raw) / 1_000_000, UTC)
        return obj.modified

    def write(self, blob: ObjectInfo, record: LabelRecord) -> None:
        """Store ``record`` for ``blob`` (unconditionally; used right after a commit)."""
        self._store(blob.key, record, blob.etag if self.inline else None)

    def write_at(self, key: str, etag: str, record: LabelRecord) -> None:
        """Store ``record`` for the blob just published at ``key`` with ``etag`` (what its
        put, completion or copy answered), without reading the blob back."""
        self._store(key, record, etag if self.inline else None)

    def inline_metadata(self, record: LabelRecord) -> dict[str, str] | None:
        """The metadata that carries ``record`` inline, or None where it cannot."""
        if not self.inline:
            return None
        value = base64.urlsafe_b64encode(record.encode()).decode()
        if len(_INLINE_KEY) + len(value) > self._budget:
            return None
        return {_INLINE_KEY: value}

    def _store(self, key: str, record: LabelRecord, etag: str | None) -> None:
        if not self.inline:
            self._driver.put(key + SIDECAR_SUFFIX, record.encode())
            return
        assert isinstance(self._driver, MetadataWriter)
        metadata = self.inline_metadata(record)
        if metadata is None:  # too big for the metadata budget: spill to the sidecar
            self._driver.put(key + SIDECAR_SUFFIX, record.encode())
            metadata = {_SPILL_KEY: "1"}
        condition = IfMatch(etag) if etag is not None else None
        self._driver.set_metadata(key, metadata, precondition=condition)

    def update(
        self,
        key: str,
        wanted: Mapping[str, str],
        fieldpaths: tuple[str, ...],
        now: datetime,
    ) -> tuple[ObjectInfo, LabelRecord]:
        """Read-modify-write the record of blob ``key`` without losing concurrent updates."""
        for _ in range(_UPDATE_ATTEMPTS):
            blob = self._driver.head(key)
            if self.inline:
                current = self.from_object(blob, None)
                new = self._next(blob, current, wanted, fieldpaths, now)
                try:
                    self._store(key, new, blob.etag)
                except FailedPreconditionError:
                    continue
                return blob, new
            sidecar_key = key + SIDECAR_SUFFIX
            try:
                sidecar = self._driver.head(sidecar_key)
                current = LabelRecord.decode(self._driver.get(sidecar_key))
                etag: str | None = sidecar.etag
            except NotFoundError:
                current, etag = None, None
            new = self._next(blob, current, wanted, fieldpaths, now)
            try:
                if etag is None:
                    self._driver.put(sidecar_key, new.encode(), precondition=CREATE_ONLY)
                else:
                    self._driver.put(sidecar_key, new.encode(), precondition=IfMatch(etag))
            except (FailedPreconditionError, AlreadyExistsError):
                continue
            return blob, new
        raise UnavailableError(f"labels of {key} kept changing under concurrent updates; retry")

    @staticmethod
    def _next(
        blob: ObjectInfo,
        current: LabelRecord | None,
        wanted: Mapping[str, str],
        fieldpaths: tuple[str, ...],
        now: datetime,
    ) -> LabelRecord:
        created = current.created if current else LabelStore.object_time(blob)
        labels = apply_update(current.labels if current else {}, wanted, fieldpaths)
        return LabelRecord(created, max(now, created), labels)

    def delete(self, blob: ObjectInfo) -> None:
        """Remove the sidecar of a blob that is being deleted (inline records go with it)."""
        if not self.inline or _SPILL_KEY in (blob.metadata or {}):
            self._driver.delete(blob.key + SIDECAR_SUFFIX)
