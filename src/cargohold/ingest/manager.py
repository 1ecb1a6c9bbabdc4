"""The ingestions of a store: open (or resume) one, its status, every status, abort.

``Store`` validates its arguments and calls these; they work on the ``IngestContext`` it built.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from ..digests import Hasher, new_hasher, parse_digest
from ..errors import AlreadyExistsError, NotFoundError
from ..locks import Lease
from ..types import Status
from .context import IngestContext
from .sessions import (
    blob_exists,
    drop_session,
    load_lock_record,
    load_state,
    load_state_key,
    save_state,
)
from .state import (
    IngestRecord,
    check_record,
    encode_hash_state,
    hasher_for,
    record_fields,
    record_from_fields,
    utcnow,
)
from .writer import Writer

__all__ = ["abort_ingestion", "ingestion_status", "list_ingestions", "open_writer"]

_log = logging.getLogger("cargohold.store")  # a restart is news of Store.writer: its logger


RETIRED_WAIT = 30.0
"""How long an abort waits for a writer of this process that committed its ref and is removing
the ingestion's records (see ``Writer.commit``'s ``defer_removal``)."""


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
    # A new ingestion's first record rides on its lease (one create-only write for both):
    # its state object is only written at its first checkpoint, session or close.
    fresh = _new_record(ctx, ref, total, expected, hint, utcnow().isoformat())
    lease = ctx.leases.acquire(ctx.layout.lock_key(ref), record_fields(fresh))
    try:
        record, tail, hasher, reason, saved = _open_ingestion(
            ctx, ref, lease, fresh, total, expected
        )
        writer = Writer(
            ctx, ref, lease, record, tail, hasher, restart_reason=reason, state_saved=saved
        )
        ctx.writers.add(writer)
    except BaseException:
        ctx.leases.release(lease)
        raise
    if reason is not None:
        _log.warning("ingestion %r restarts from zero: %s", ref, reason)
    return writer


def _new_record(
    ctx: IngestContext, ref: str, total: int, expected: str, hint: str, started: str
) -> IngestRecord:
    """The record of an ingestion starting at offset 0."""
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
    record.hash_state = encode_hash_state(new_hasher(record.algorithm).state())
    return record


def _same(record: IngestRecord, total: int, expected: str) -> bool:
    """Whether an open for ``total``/``expected`` continues ``record`` (else it replaces it)."""
    return (not total or total == record.total) and (not expected or expected == record.expected)


def _open_ingestion(
    ctx: IngestContext, ref: str, lease: Lease, fresh: IngestRecord, total: int, expected: str
) -> tuple[IngestRecord, bytes, Hasher, str | None, bool]:
    """The record, tail, hasher and restart reason to open ``ref`` with, and whether it has a
    state object."""
    loaded = load_state(ctx, ref, with_tail=True)
    if loaded is None:
        # No state: a new ingestion, or one whose writer died before saving any (its record
        # is on the lease just taken over from it; keep what it was started with).
        previous = record_from_fields(lease.previous)
        if (
            previous is not None
            and previous.ref == ref
            and _same(previous, total, expected)
            and check_record(previous, b"") is None
            and previous.offset == 0
            and previous.upload_id is None
        ):
            record = _new_record(
                ctx, ref, previous.total, previous.expected, previous.hint, previous.started_at
            )
            ctx.leases.set_payload(lease, record_fields(record))
            return record, b"", new_hasher(record.algorithm), None, False
        return fresh, b"", new_hasher(fresh.algorithm), None, False
    record, tail = loaded
    reason: str | None = None
    same = _same(record, total, expected)
    if same:
        resumed, reason = _resume(ctx, record, tail)
        if resumed is not None:
            return record, tail, resumed, None, True
    drop_session(ctx, record)
    if same:
        # Not a different blob, only an unusable resume point: start over from zero
        # but keep what the ingestion was started with.
        total, expected = record.total, record.expected
        fresh = _new_record(ctx, ref, total, expected, record.hint, record.started_at)
        if record.offset == 0 and not record.parts:
            reason = None  # nothing was lost
    save_state(ctx, ref, fresh, b"")
    return fresh, b"", new_hasher(fresh.algorithm), reason, True


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
        if live.retired:
            raise NotFoundError(f"no ingestion for ref {ref!r} (it was just committed)")
        return live.status()
    loaded = load_state(ctx, ref, with_tail=False)
    if loaded is not None:
        return loaded[0].status()
    first = load_lock_record(ctx, ctx.layout.lock_key(ref))
    if first is not None and first.ref == ref:
        return first.status()
    # Neither yet: a writer elsewhere may have saved its state and let go of its lease
    # between the two reads (a writer closes in that order), so the state is read once more
    # before the ingestion is declared missing.
    loaded = load_state(ctx, ref, with_tail=False)
    if loaded is not None:
        return loaded[0].status()
    raise NotFoundError(f"no ingestion for ref {ref!r}")


def list_ingestions(ctx: IngestContext) -> list[Status]:
    """The status of every ingestion, in listing order (snapshots: no lock, no wait)."""
    writers = ctx.writers.snapshot()
    live = {ref: w.status() for ref, w in writers if not w.retired}
    over = {ref for ref, w in writers if w.retired}
    found: list[Status] = []
    for state_key, lock_key in _ingestion_keys(ctx):
        if state_key is not None:
            loaded = load_state_key(ctx, state_key, with_tail=False)
            record = loaded[0] if loaded is not None else None
        else:
            assert lock_key is not None
            record = load_lock_record(ctx, lock_key)  # none saved yet: its first record
        if record is not None and record.ref not in over:
            found.append(live.get(record.ref, record.status()))
    return found


def _ingestion_keys(ctx: IngestContext) -> Iterator[tuple[str | None, str | None]]:
    """Each ingestion directory's state and lock keys (either may be absent), in listing
    order: one listing, whose keys come grouped by directory."""
    current: str | None = None
    state_key: str | None = None
    lock_key: str | None = None
    for obj in ctx.driver.list(ctx.layout.ingestions):
        directory, _, name = obj.key.rpartition("/")
        if directory != current:
            if state_key is not None or lock_key is not None:
                yield state_key, lock_key
            current, state_key, lock_key = directory, None, None
        if name == "state":
            state_key = obj.key
        elif name == "lock":
            lock_key = obj.key
    if state_key is not None or lock_key is not None:
        yield state_key, lock_key


def abort_ingestion(ctx: IngestContext, ref: str) -> None:
    """Remove ingestion ``ref`` and everything uploaded for it; NotFoundError if none.

    A writer of this process that committed ``ref`` and is still removing its records is
    waited for (bounded): the ingestion is over, and the abort then finds nothing."""
    retiring = ctx.writers.get(ref)
    if retiring is not None and retiring.retired:
        ctx.writers.wait_until_free(ref, RETIRED_WAIT, ctx.clock)
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
