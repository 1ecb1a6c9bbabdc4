"""The ingestions of a store: open (or resume) one, its status, every status, abort.

``Store`` validates its arguments and calls these; they work on the ``IngestContext`` it built.
"""

from __future__ import annotations

import logging

from ..digests import Hasher, new_hasher, parse_digest
from ..errors import AlreadyExistsError, NotFoundError
from ..types import Status
from .context import IngestContext
from .sessions import blob_exists, drop_session, load_state, load_state_key, save_state
from .state import IngestRecord, encode_hash_state, hasher_for, utcnow
from .writer import Writer

__all__ = ["abort_ingestion", "ingestion_status", "list_ingestions", "open_writer"]

_log = logging.getLogger("cargohold.store")  # a restart is news of Store.writer: its logger


# -- opening -------------------------------------------------------------------------------


def open_writer(
    ctx: IngestContext,
    ref: str,
    total: int,
    expected: str,
    hint: str,
    wait: float,
    *,
    check_exists: bool = True,
) -> Writer:
    """Open (or resume) ingestion ``ref`` (already validated); see ``Store.writer``.

    Without ``check_exists`` (the caller knows the blob is absent) the expected blob is not
    looked for: its commit's create-only publish still refuses to replace it."""
    if check_exists and expected and blob_exists(ctx, ctx.layout.blob_key(parse_digest(expected))):
        raise AlreadyExistsError(f"content {expected} already exists")
    if wait > 0:
        ctx.writers.wait_until_free(ref, wait, ctx.clock)
    lease = ctx.leases.acquire(ctx.layout.lock_key(ref))
    try:
        record, tail, hasher, reason = _open_ingestion(ctx, ref, total, expected, hint)
        writer = Writer(ctx, ref, lease, record, tail, hasher, restart_reason=reason)
        ctx.writers.add(writer)
    except BaseException:
        ctx.leases.release(lease)
        raise
    if reason is not None:
        _log.warning("ingestion %r restarts from zero: %s", ref, reason)
    return writer


def _open_ingestion(
    ctx: IngestContext, ref: str, total: int, expected: str, hint: str = ""
) -> tuple[IngestRecord, bytes, Hasher, str | None]:
    loaded = load_state(ctx, ref, with_tail=True)
    started = utcnow().isoformat()
    reason: str | None = None
    if loaded is not None:
        record, tail = loaded
        same = (not total or total == record.total) and (
            not expected or expected == record.expected
        )
        if same:
            resumed, reason = _resume(ctx, record, tail)
            if resumed is not None:
                return record, tail, resumed, None
        drop_session(ctx, record)
        if same:
            # Not a different blob, only an unusable resume point: start over from zero
            # but keep what the ingestion was started with.
            total, expected = record.total, record.expected
            hint, started = record.hint, record.started_at
            if record.offset == 0 and not record.parts:
                reason = None  # nothing was lost
    algorithm = parse_digest(expected).algorithm if expected else "sha256"
    if expected or (hint and parse_digest(hint).algorithm != algorithm):
        hint = ""  # an expected digest binds the key anyway; a hint must be comparable
    record = IngestRecord(
        ref=ref,
        total=total,
        expected=expected,
        started_at=started,
        updated_at=started,
        algorithm=algorithm,
        part_size=ctx.part_size,
        hint=hint,
    )
    hasher = new_hasher(record.algorithm)
    record.hash_state = encode_hash_state(hasher.state())
    save_state(ctx, ref, record, b"")
    return record, b"", hasher, reason


def _resume(
    ctx: IngestContext, record: IngestRecord, tail: bytes
) -> tuple[Hasher | None, str | None]:
    """The hasher to continue ``record`` with, or None and why it cannot be trusted."""
    hasher, problem = hasher_for(record, tail)
    if hasher is None:
        return None, problem
    if record.staged:
        assert record.upload_key is not None
        try:
            size = ctx.driver.head(record.upload_key).size
        except NotFoundError:
            return None, "its assembled bytes are gone"
        if size != record.offset:
            return None, f"its assembled bytes are {size} long, not {record.offset}"
        return hasher, None
    if record.upload_id is None:
        return hasher, None
    assert record.upload_key is not None
    try:
        held = {p.number: p for p in ctx.driver.list_parts(record.upload_key, record.upload_id)}
    except NotFoundError:
        return None, "its upload session is gone"
    for number, _size, etag in record.parts:
        part = held.get(int(number))
        if part is None or part.etag != etag:
            return None, f"part {number} of its upload session is missing or changed"
    return hasher, None


# -- status and abort ----------------------------------------------------------------------


def ingestion_status(ctx: IngestContext, ref: str) -> Status:
    """The status of ingestion ``ref``: its writer's snapshot in this process, else its state."""
    live = ctx.writers.get(ref)
    if live is not None:
        return live.status()
    loaded = load_state(ctx, ref, with_tail=False)
    if loaded is None:
        raise NotFoundError(f"no ingestion for ref {ref!r}")
    return loaded[0].status()


def list_ingestions(ctx: IngestContext) -> list[Status]:
    """The status of every ingestion, in listing order (snapshots: no lock, no wait)."""
    live = {ref: w.status() for ref, w in ctx.writers.snapshot()}
    found: list[Status] = []
    for obj in ctx.driver.list(ctx.layout.ingestions):
        if not obj.key.endswith("/state"):
            continue
        loaded = load_state_key(ctx, obj.key, with_tail=False)
        if loaded is None:
            continue
        found.append(live.get(loaded[0].ref, loaded[0].status()))
    return found


def abort_ingestion(ctx: IngestContext, ref: str) -> None:
    """Remove ingestion ``ref`` and everything uploaded for it; NotFoundError if none."""
    loaded = load_state(ctx, ref, with_tail=False)
    live = ctx.writers.pop(ref)
    if live is not None:
        live.mark_aborted()
    lock_key = ctx.layout.lock_key(ref)
    if loaded is None:
        if not blob_exists(ctx, lock_key):
            raise NotFoundError(f"no ingestion for ref {ref!r}")
    else:
        drop_session(ctx, loaded[0])
        ctx.driver.delete(ctx.layout.state_key(ref))
    ctx.driver.delete(ctx.layout.staging_key(ref))
    ctx.driver.delete(lock_key)
    if live is not None:
        ctx.leases.release(live.lease)
