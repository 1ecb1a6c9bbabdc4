"""Digest hints (``Store.writer(..., hint=)``): the upload targets the hinted blob key; a wrong
hint costs one failed commit and a restart, never a wrong blob."""

from __future__ import annotations

import contextlib
from dataclasses import asdict

import pytest

from cargohold import (
    AlreadyExistsError,
    ContentError,
    Descriptor,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ServiceError,
    Store,
)
from cargohold.ingest import IngestRecord, decode_state, encode_state
from cargohold.ingest import sessions as ingest_sessions

from ..helpers import digest_of, open_small, random_bytes, read_all


def _ingest_counting_copies(store: Store, ref: str, data: bytes, hint: str) -> int:
    store.driver.reset_calls()
    with store.writer(ref, hint=hint) as writer:
        writer.write(data)
        writer.commit(len(data), digest_of(data))
    return store.driver.calls.get("copy", 0)


def test_a_right_hint_uploads_straight_to_the_blob_key(cstore: Store) -> None:
    data = random_bytes(3 * cstore.part_size + 17, seed=301)
    other = random_bytes(3 * cstore.part_size + 17, seed=302)
    assert _ingest_counting_copies(cstore, "hinted", data, digest_of(data)) == 0
    assert _ingest_counting_copies(cstore, "unhinted", other, "") == 1  # staged, then copied
    assert read_all(cstore, digest_of(data)) == data
    assert read_all(cstore, digest_of(other)) == other
    for ref in ("hinted", "unhinted"):
        with pytest.raises(NotFoundError):
            cstore.status(ref)


@pytest.mark.parametrize("expected_at_commit", [True, False])
def test_a_wrong_hint_fails_one_commit_then_the_retry_stages(
    cstore: Store, expected_at_commit: bool
) -> None:
    data = random_bytes(2 * cstore.part_size + 5, seed=303)
    named = digest_of(random_bytes(100, seed=304))
    with cstore.writer("liar", Descriptor(size=len(data)), hint=named) as writer:
        writer.write(data)
        with pytest.raises(FailedPreconditionError, match="restarted"):
            writer.commit(len(data), digest_of(data) if expected_at_commit else "")
    status = cstore.status("liar")
    assert (status.offset, status.total) == (0, len(data))
    for digest in (named, digest_of(data)):
        with pytest.raises(NotFoundError):
            cstore.info(digest)
    if cstore.driver.limits.abort_removes_parts:
        assert not [u for u in cstore.driver.list_uploads("") if named.split(":")[1] in u.key]
    # The retry (same ref, same hint, as a client would send) takes the staging path.
    with cstore.writer("liar", Descriptor(size=len(data)), hint=named) as writer:
        assert writer.status().offset == 0
        writer.write(data)
        writer.commit(len(data), digest_of(data))
    assert read_all(cstore, digest_of(data)) == data
    with pytest.raises(NotFoundError):
        cstore.info(named)


def test_a_wrong_hint_on_a_blob_under_one_part_costs_nothing(cstore: Store) -> None:
    data = b"small enough for one put"
    with cstore.writer("small-liar", hint=digest_of(b"something else")) as writer:
        writer.write(data)
        writer.commit(len(data))
    assert read_all(cstore, digest_of(data)) == data


def test_a_hinted_ingestion_resumes_with_its_hint(cstore: Store) -> None:
    data = random_bytes(3 * cstore.part_size + 9, seed=305)
    hint = digest_of(data)
    with cstore.writer("resumed", hint=hint) as writer:
        writer.write(data[: 2 * cstore.part_size + 1])
    cstore.driver.reset_calls()
    with cstore.writer("resumed") as writer:  # reopened without the hint: it is kept
        writer.write(data[writer.status().offset :])
        writer.commit(len(data), hint)
    assert cstore.driver.calls.get("copy", 0) == 0
    assert read_all(cstore, hint) == data


def test_two_writers_with_one_hint_commit_once(cstore: Store) -> None:
    data = random_bytes(2 * cstore.part_size + 3, seed=306)
    hint = digest_of(data)
    first = cstore.writer("twin-a", hint=hint)
    second = cstore.writer("twin-b", hint=hint)
    half = len(data) // 2
    for writer in (first, second):
        writer.write(data[:half])
    for writer in (first, second):
        writer.write(data[half:])
    first.commit(len(data), hint)
    with pytest.raises(AlreadyExistsError):
        second.commit(len(data), hint)
    assert read_all(cstore, hint) == data
    for ref in ("twin-a", "twin-b"):
        with pytest.raises(NotFoundError):
            cstore.status(ref)


def test_an_expected_digest_overrides_the_hint(cstore: Store) -> None:
    data = random_bytes(2 * cstore.part_size + 1, seed=307)
    desc = Descriptor(digest=digest_of(data), size=len(data))
    with cstore.writer("both", desc, hint=digest_of(b"not these bytes")) as writer:
        writer.write(data)
        writer.commit()
    assert read_all(cstore, digest_of(data)) == data


def test_a_malformed_hint_is_invalid_argument(cstore: Store) -> None:
    for hint in ("sha256:xyz", "md5:" + "0" * 32, "not a digest"):
        with pytest.raises(InvalidArgumentError):
            cstore.writer("bad-hint", hint=hint)
    with pytest.raises(NotFoundError):
        cstore.status("bad-hint")


def test_a_commit_of_stored_bytes_is_already_exists_whatever_the_hint(cstore: Store) -> None:
    data = random_bytes(2 * cstore.part_size + 7, seed=308)
    with cstore.writer("first") as writer:
        writer.write(data)
        writer.commit(len(data), digest_of(data))
    with cstore.writer("again", hint=digest_of(b"a wrong guess")) as writer:
        writer.write(data)
        with pytest.raises(AlreadyExistsError):
            writer.commit(len(data))
    with pytest.raises(NotFoundError):
        cstore.status("again")


def test_a_wrong_hint_commit_after_an_abort_elsewhere_resurrects_nothing(
    cstore: Store, cargohold_store_url: str
) -> None:
    data = random_bytes(2 * cstore.part_size + 7, seed=309)
    writer = cstore.writer("aborted-liar", hint=digest_of(b"a wrong guess"))
    writer.write(data)
    other = open_small(cargohold_store_url)
    try:
        other.abort("aborted-liar")
    finally:
        other.close()
    with pytest.raises(FailedPreconditionError):
        writer.commit(len(data))
    with pytest.raises(NotFoundError):
        cstore.status("aborted-liar")


@pytest.mark.parametrize("failing", ["abort_upload", "save_state"])
@pytest.mark.parametrize("restart_by", ["truncate", "wrong hint"])
def test_a_restart_that_fails_halfway_keeps_a_consistent_ingestion(
    cstore: Store, monkeypatch: pytest.MonkeyPatch, restart_by: str, failing: str
) -> None:
    """If dropping the upload session or saving the reset record fails, the writer fails like
    one whose part upload failed: what it keeps is a checkpoint whose parts are all listed (or
    a record naming the dropped session, which restarts from zero), never an offset that
    counts bytes of discarded parts."""
    data = random_bytes(4 * cstore.part_size + 13, seed=310)
    hint = digest_of(b"a wrong guess") if restart_by == "wrong hint" else ""
    writer = cstore.writer("stuck", hint=hint)
    writer.write(data)

    def refuse(*args: object) -> None:
        raise ServiceError(f"{failing} refused")

    target = cstore.driver if failing == "abort_upload" else ingest_sessions
    # A context of its own: undoing the fixture itself would undo the store's environment too.
    with monkeypatch.context() as patch:
        patch.setattr(target, failing, refuse)
        with pytest.raises(ContentError):
            if restart_by == "truncate":
                writer.truncate(0)
            else:
                writer.commit(len(data))
        with contextlib.suppress(ContentError):
            writer.close()
    for attempt in range(2):  # a wrong hint still held fails one more commit, then restarts
        with cstore.writer("stuck", hint=hint) as again:
            again.write(data[again.status().offset :])
            try:
                again.commit(len(data), digest_of(data))
            except FailedPreconditionError:
                assert restart_by == "wrong hint" and attempt == 0
                continue
        break
    assert read_all(cstore, digest_of(data)) == data


def test_state_records_carry_a_hint_only_when_there_is_one() -> None:
    """Records without a hint encode exactly as before hints existed (older readers accept
    them); both kinds round-trip."""
    plain = IngestRecord("r", 0, "", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00")
    hinted = IngestRecord(**{**asdict(plain), "hint": "sha256:" + "a" * 64})
    for record in (plain, hinted):
        raw = encode_state(record, b"tail")
        assert decode_state(raw) == (record, b"tail")
        assert (b'"hint"' in raw) == bool(record.hint)
