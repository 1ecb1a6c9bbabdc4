"""Ingestion bookkeeping: an ingestion's saved state, its upload session's key, dropping and
removing it.

Everything here works on an ``IngestContext``; the keys come from its ``Layout``:
``ingest/<sha256(ref)>/state`` holds the record and tail (see ``state``), ``.../lock`` the
writer's lease, ``.../data`` the bytes of an ingestion whose digest is not known in advance.
"""

from __future__ import annotations

from ..digests import parse_digest
from ..errors import NotFoundError
from ..locks import read_payload
from .context import IngestContext
from .state import IngestRecord, decode_state, encode_state, holds_record, record_from_fields

__all__ = [
    "blob_exists",
    "drop_session",
    "load_lock_record",
    "load_state",
    "load_state_key",
    "remove_ingestion",
    "save_state",
    "upload_key",
]

_STATE_HEAD = 64 * 1024


def upload_key(ctx: IngestContext, ref: str, expected: str) -> str:
    """Where an ingestion's upload session assembles its bytes: the blob key of ``expected``
    (an expected digest or a hint), else the ingestion's staging key."""
    if expected:
        return ctx.layout.blob_key(parse_digest(expected))
    return ctx.layout.staging_key(ref)


def blob_exists(ctx: IngestContext, key: str) -> bool:
    """Whether an object is at ``key``."""
    try:
        ctx.driver.head(key)
    except NotFoundError:
        return False
    return True


def save_state(ctx: IngestContext, ref: str, record: IngestRecord, tail: bytes) -> None:
    """Save ``record`` and ``tail`` as ingestion ``ref``'s state object."""
    ctx.driver.put(ctx.layout.state_key(ref), encode_state(record, tail))


def load_state(
    ctx: IngestContext, ref: str, *, with_tail: bool
) -> tuple[IngestRecord, bytes] | None:
    """Ingestion ``ref``'s saved record (and tail, if asked for), or None if it has none."""
    return load_state_key(ctx, ctx.layout.state_key(ref), with_tail=with_tail)


def load_state_key(
    ctx: IngestContext, key: str, *, with_tail: bool
) -> tuple[IngestRecord, bytes] | None:
    """Read a state object; without the tail, a ranged read of its head usually suffices."""
    try:
        if with_tail:
            return decode_state(ctx.driver.get(key))
        raw = ctx.driver.get_range(key, 0, _STATE_HEAD)
        if not holds_record(raw):
            raw = ctx.driver.get(key)
    except NotFoundError:
        return None
    return decode_state(raw)[0], b""


def drop_session(ctx: IngestContext, record: IngestRecord) -> None:
    """Abort an ingestion's upload session and staged data, if any."""
    if record.upload_id and record.upload_key:
        ctx.driver.abort_upload(record.upload_key, record.upload_id)
    if record.upload_key and record.staged:
        ctx.driver.delete(record.upload_key)


def load_lock_record(ctx: IngestContext, key: str) -> IngestRecord | None:
    """The first record of an ingestion that has saved no state yet, as its writer's lease
    at ``key`` publishes it (see ``manager.open_writer``); None if there is none."""
    return record_from_fields(read_payload(ctx.driver, key))


def remove_ingestion(
    ctx: IngestContext, ref: str, record: IngestRecord, *, state_saved: bool = True
) -> None:
    """The ingestion is over: drop its session and its state (if it ever saved one)."""
    drop_session(ctx, record)
    if state_saved:
        ctx.driver.delete(ctx.layout.state_key(ref))
