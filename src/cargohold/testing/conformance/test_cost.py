"""Request budgets at the driver-call level (CONTRACT.md "Cost"), for every driver.

Drivers' own tests count HTTP requests; these count calls into the driver protocol, which is
what the store controls.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cargohold import Descriptor, Store
from cargohold.errors import AlreadyExistsError

from ..helpers import digest_of, random_bytes

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
    # open: head, lease, state get, state put; session start + its state; commit: renew,
    # head, complete; cleanup: state, lease.
    assert sum(calls.values()) - parts <= 11, calls


def test_small_blob_is_one_put_without_upload_session(cstore: Store) -> None:
    data = b"small"
    cstore.driver.reset_calls()
    with cstore.writer("small") as writer:
        writer.write(data)
        writer.commit(len(data), digest_of(data))
    calls = dict(cstore.driver.calls)
    assert "start_upload" not in calls and "upload_part" not in calls, calls
    # open: lease, state get, state put; commit: renew, create-only put (no head first);
    # cleanup: state, lease.
    assert "head" not in calls, calls
    assert sum(calls.values()) <= 7, calls


def test_known_absent_open_skips_the_existence_check(cstore: Store) -> None:
    data = b"known absent"
    desc = Descriptor(digest=digest_of(data), size=len(data))
    cstore.driver.reset_calls()
    with cstore.writer("absent", desc, known_absent=True) as writer:
        writer.write(data)
        writer.commit(len(data), desc.digest)
    calls = dict(cstore.driver.calls)
    assert "head" not in calls and sum(calls.values()) <= 7, calls
    # Wrongly "known" absent: the commit still refuses to replace the blob, and cleans up.
    with cstore.writer("absent", desc, known_absent=True) as writer:
        writer.write(data)
        with pytest.raises(AlreadyExistsError):
            writer.commit(len(data), desc.digest)
    assert "absent" not in [s.ref for s in cstore.list_statuses()]
    with pytest.raises(AlreadyExistsError):
        cstore.writer("absent", desc)


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
