"""Request budgets at the driver-call level (CONTRACT.md "Cost"), for every driver.

Drivers' own tests count HTTP requests; these count calls into the driver protocol, which is
what the store controls.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest

from cargohold import Descriptor, Store
from cargohold.errors import AlreadyExistsError, NotFoundError, UnavailableError

from ..helpers import digest_of, open_small, random_bytes

LIST_CALLS = {"list", "list_parts", "list_uploads"}


def test_info_is_at_most_two_calls(cstore: Store, ingest: Callable[..., str]) -> None:
    plain = ingest(b"plain")
    labelled = ingest(b"labelled", {"a": "b"})
    for digest in (plain, labelled):
        cstore.driver.reset_calls()
        cstore.info(digest)
        assert sum(cstore.driver.calls.values()) <= 2, cstore.driver.calls


def test_walk_lists_and_reads_only_labelled_records(
    cstore: Store, ingest: Callable[..., str]
) -> None:
    for i in range(30):
        ingest(f"blob {i}".encode(), {"n": str(i)} if i < 5 else None)
    cstore.driver.reset_calls()
    assert len(list(cstore.walk())) == 30
    calls = dict(cstore.driver.calls)
    per_blob = sum(n for op, n in calls.items() if op not in LIST_CALLS)
    assert calls.get("list") == 1, calls
    if cstore.labels.inline:
        assert per_blob == 0, calls
    else:
        assert per_blob <= 5, calls  # one small read per labelled blob, none for the others


def test_ingest_uses_about_one_call_per_part(cstore: Store) -> None:
    parts = 6
    data = random_bytes(parts * cstore.part_size, seed=70)
    cstore.driver.reset_calls()
    with cstore.writer("cost", Descriptor(digest=digest_of(data), size=len(data))) as writer:
        step = cstore.part_size // 3
        for start in range(0, len(data), step):
            writer.write(data[start : start + step])
        writer.commit(len(data), digest_of(data))
    calls = dict(cstore.driver.calls)
    assert calls.get("upload_part") == parts, calls
    # open: head, lease (carrying the first record), state get; session start + its state;
    # commit: renew, complete (create-only at the blob key: no head first); cleanup: state,
    # lease.
    assert "head" not in calls or calls["head"] == 1, calls
    assert sum(calls.values()) - parts <= 9, calls


def test_small_blob_is_one_put_without_upload_session(cstore: Store) -> None:
    data = b"small"
    cstore.driver.reset_calls()
    with cstore.writer("small") as writer:
        writer.write(data)
        writer.commit(len(data), digest_of(data))
    calls = dict(cstore.driver.calls)
    assert "start_upload" not in calls and "upload_part" not in calls, calls
    # open: lease (carrying the first record), state get; commit: renew, create-only put (no
    # head first); cleanup: the lease (no state was ever saved).
    assert "head" not in calls and calls.get("delete") == 1, calls
    assert sum(calls.values()) <= 5, calls


def test_known_absent_open_skips_the_existence_check(cstore: Store) -> None:
    data = b"known absent"
    desc = Descriptor(digest=digest_of(data), size=len(data))
    cstore.driver.reset_calls()
    with cstore.writer("absent", desc, known_absent=True) as writer:
        writer.write(data)
        writer.commit(len(data), desc.digest)
    calls = dict(cstore.driver.calls)
    assert "head" not in calls and sum(calls.values()) <= 5, calls
    # Wrongly "known" absent: the commit still refuses to replace the blob, and cleans up.
    with cstore.writer("absent", desc, known_absent=True) as writer:
        writer.write(data)
        with pytest.raises(AlreadyExistsError):
            writer.commit(len(data), desc.digest)
    assert "absent" not in [s.ref for s in cstore.list_statuses()]
    with pytest.raises(AlreadyExistsError):
        cstore.writer("absent", desc)


def test_a_new_ingestion_is_seen_everywhere_before_it_saves_state(
    cstore: Store, cargohold_store_url: str
) -> None:
    """A new ingestion's first record rides on its lease: another store (another process)
    sees it in status and list_statuses before any state object exists."""
    data = b"first record"
    other = open_small(cargohold_store_url)
    try:
        writer = cstore.writer("first", Descriptor(size=len(data)))
        try:
            with pytest.raises(NotFoundError):
                cstore.driver.head(cstore.layout.state_key("first"))
            mine = writer.status()
            assert mine.offset == 0 and mine.total == len(data)
            assert other.status("first") == mine
            assert [s for s in other.list_statuses() if s.ref == "first"] == [mine]
            writer.write(data[:5])
        finally:
            writer.close()
        assert other.status("first").offset == 5  # close saved the state
        assert other.status("first").started_at == mine.started_at
        with cstore.writer("first") as writer:
            writer.write(data[5:])
            writer.commit(len(data), digest_of(data))
        with pytest.raises(NotFoundError):
            other.status("first")
        assert "first" not in [s.ref for s in other.list_statuses()]
    finally:
        other.close()


def test_a_new_ingestion_left_without_state_is_taken_over_with_its_record(
    cargohold_store_url: str,
) -> None:
    """A writer dropped before it saved any state (its caller died) leaves its first record
    on its lease; the next open, once the lease lapsed, keeps what it was started with."""
    lease = 0.6
    store = open_small(cargohold_store_url, lease_timeout=lease)
    try:
        _take_over_a_stateless_ingestion(store, lease)
    finally:
        store.close()


def _take_over_a_stateless_ingestion(store: Store, lease: float) -> None:
    writer = store.writer("left", Descriptor(size=3))
    started = writer.status().started_at
    del writer  # never closed: its lease is orphaned (no longer renewed), not released
    gc.collect()
    deadline = time.monotonic() + 20 * lease
    while True:
        try:
            writer = store.writer("left")
            break
        except UnavailableError:
            assert time.monotonic() < deadline, "the orphaned lease never lapsed"
            time.sleep(lease / 4)
    with writer:
        status = writer.status()
        assert (status.offset, status.total, status.started_at) == (0, 3, started)
        assert writer.restart_reason is None
        writer.write(b"abc")
        writer.commit(3, digest_of(b"abc"))
    assert "left" not in [s.ref for s in store.list_statuses()]


def test_big_read_takes_one_ranged_get_per_stream(
    cstore: Store, ingest: Callable[..., str]
) -> None:
    data = random_bytes(8 * cstore.part_size + 1, seed=71)
    digest = ingest(data)
    reader = cstore.reader_at(digest)
    cstore.driver.reset_calls()
    assert reader.read_at(0, len(data)) == data
    assert cstore.driver.calls["get_range"] == min(cstore.read_streams, 9), cstore.driver.calls
    cstore.driver.reset_calls()
    assert reader.read_at(5, cstore.part_size) == data[5 : 5 + cstore.part_size]
    assert cstore.driver.calls["get_range"] == 1, cstore.driver.calls
