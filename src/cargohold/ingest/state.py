"""An ingestion's durable record and its encoding in the ``state`` object.

The state object is ``magic | JSON length | JSON record | tail``, where the tail is the buffered
bytes not yet uploaded as a part. The record's ``hash_state`` is ``"v2:" + hex`` of the portable
hash state (see ``digests``); a record written before version 2 holds the hex of this host's raw
OpenSSL context, which is converted if it checks out and otherwise makes the ingestion restart.

``check_record`` states the invariants every saved record keeps and every resume re-checks, so a
record that could publish bytes under a digest they do not have is never written, and never
trusted if found: the hash state has hashed exactly ``offset`` bytes; the recorded parts are
numbered 1..n without a gap and, with the tail, hold exactly ``offset`` bytes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..digests import STATE_FORMAT, legacy_state, new_hasher, state_length
from ..drivers.base import MiB
from ..errors import ContentError, FailedPreconditionError, InvalidArgumentError
from ..types import Status

__all__ = [
    "IngestRecord",
    "check_record",
    "decode_state",
    "encode_hash_state",
    "encode_state",
    "hasher_for",
    "holds_record",
    "record_fields",
    "record_from_fields",
    "utcnow",
]

_MAGIC = b"CHI1"
_HEADER = struct.Struct(">4sI")
_STATE_PREFIX = f"v{STATE_FORMAT}:"


def utcnow() -> datetime:
    """Now, in UTC (the times of records and statuses)."""
    return datetime.now(UTC)


@dataclass
class IngestRecord:
    """What is durable about an ingestion (the JSON half of the state object)."""

    ref: str
    total: int
    expected: str
    started_at: str
    updated_at: str
    algorithm: str = "sha256"
    part_size: int = 8 * MiB
    offset: int = 0
    hash_state: str | None = None
    upload_key: str | None = None
    upload_id: str | None = None
    parts: list[list[Any]] = field(default_factory=list)
    staged: bool = False
    """All bytes are assembled at ``upload_key``; only the copy to the blob key is left."""
    hint: str = ""
    """A digest the bytes are likely to have: the upload session targets its blob key."""

    def status(self) -> Status:
        return Status(
            ref=self.ref,
            offset=self.offset,
            total=self.total,
            expected=self.expected,
            started_at=datetime.fromisoformat(self.started_at),
            updated_at=datetime.fromisoformat(self.updated_at),
        )

    def copy(self) -> IngestRecord:
        return IngestRecord(**asdict(self))


def encode_hash_state(state: bytes | None) -> str | None:
    """The record's form of a portable hash state."""
    return None if state is None else _STATE_PREFIX + state.hex()


def _hash_state_bytes(record: IngestRecord) -> bytes:
    """The portable hash state of ``record``; InvalidArgumentError if unknown or malformed."""
    raw = record.hash_state
    if raw is None:
        raise InvalidArgumentError("the ingestion has no saved hash state")
    if raw.startswith(_STATE_PREFIX):
        return bytes.fromhex(raw[len(_STATE_PREFIX) :])
    if ":" in raw:
        raise InvalidArgumentError(f"unknown hash state format {raw.split(':', 1)[0]!r}")
    return legacy_state(record.algorithm, bytes.fromhex(raw))  # format 1 (this host's layout)


def check_record(record: IngestRecord, tail: bytes) -> str | None:
    """Why ``record`` (with ``tail``) cannot be trusted, or None if it keeps every invariant.

    A record without a hash state (written where libcrypto was unusable) keeps the invariants
    but can never be resumed (see ``hasher_for``).
    """
    if record.hash_state is not None:
        try:
            hashed = state_length(record.algorithm, _hash_state_bytes(record))
        except (InvalidArgumentError, ValueError) as exc:
            return f"its hash state is unusable ({exc})"
        if hashed != record.offset:
            return f"its hash state covers {hashed} bytes, not its offset {record.offset}"
    numbers = [int(p[0]) for p in record.parts]
    if numbers != list(range(1, len(numbers) + 1)):
        return "its recorded parts are not numbered 1..n"
    in_parts = sum(int(p[1]) for p in record.parts)
    if record.staged:
        if record.parts or tail or record.upload_key is None:
            return "it is marked staged but still holds parts or a tail"
        return None
    if record.upload_id is None and record.parts:
        return "it records parts without an upload session"
    if in_parts + len(tail) != record.offset:
        return f"its parts and tail hold {in_parts + len(tail)} bytes, not {record.offset}"
    return None


def hasher_for(record: IngestRecord, tail: bytes) -> tuple[Any, str | None]:
    """The hasher that continues ``record``, or None and the reason it cannot be trusted."""
    if record.hash_state is None:
        return None, "it has no saved hash state (libcrypto was unusable where it was written)"
    problem = check_record(record, tail)
    if problem is not None:
        return None, problem
    try:
        return new_hasher(record.algorithm, _hash_state_bytes(record)), None
    except (ValueError, ContentError) as exc:
        return None, f"its hash state cannot be loaded here ({exc})"


def record_fields(record: IngestRecord) -> dict[str, object]:
    """``record`` as JSON-able fields.

    An empty ``hint`` is left out, so that the record of an ingestion without one stays
    readable by versions from before hints (during a rolling upgrade of hosts on one bucket).
    """
    fields = asdict(record)
    if not fields["hint"]:
        del fields["hint"]
    return fields


def record_from_fields(fields: object) -> IngestRecord | None:
    """The record ``record_fields`` gave, or None if ``fields`` is not one."""
    if not isinstance(fields, dict):
        return None
    try:
        record = IngestRecord(**fields)
        record.status()  # its times parse
    except (TypeError, ValueError):
        return None
    return record


def encode_state(record: IngestRecord, tail: bytes) -> bytes:
    """The state object: magic, JSON length, JSON record (``record_fields``), tail bytes."""
    body = json.dumps(record_fields(record), separators=(",", ":")).encode()
    return _HEADER.pack(_MAGIC, len(body)) + body + tail


def decode_state(raw: bytes) -> tuple[IngestRecord, bytes]:
    """Split a state object into its record and tail."""
    try:
        magic, length = _HEADER.unpack_from(raw)
        if magic != _MAGIC:
            raise ValueError("bad magic")
        body = json.loads(raw[_HEADER.size : _HEADER.size + length])
        return IngestRecord(**body), raw[_HEADER.size + length :]
    except (ValueError, TypeError, struct.error) as exc:
        raise FailedPreconditionError("an ingestion's state object is corrupt") from exc


def holds_record(raw: bytes) -> bool:
    """Whether the first bytes of a state object hold its whole JSON record."""
    if len(raw) < _HEADER.size:
        return True  # too short to be valid: let decode_state report it
    _, length = _HEADER.unpack_from(raw)
    return _HEADER.size + int(length) <= len(raw)
