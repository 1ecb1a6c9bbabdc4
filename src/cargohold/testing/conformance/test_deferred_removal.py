"""A commit with ``defer_removal`` (the plugin's): answered once the blob is published, the
ingestion's records removed by the close that follows.

Between the two, this process must already treat the ingestion as over: ``status`` says
NotFound, ``list_statuses`` leaves it out, an abort waits for the close and then finds nothing,
and a reopen of the ref waits for the close and starts a new ingestion. Every wait is bounded.
"""

from __future__ import annotations

import threading
import time

import pytest

from cargohold import Descriptor, NotFoundError, Store

from ..helpers import digest_of, random_bytes, read_all

DEADLINE = 30.0


def _ingest_keys(store: Store) -> list[str]:
    return [obj.key for obj in store.driver.list(store.layout.ingestions)]


def _deferred(store: Store, ref: str, data: bytes) -> object:
    """A writer of ``ref`` committed with ``defer_removal`` and not yet closed."""
    writer = store.writer(ref)
    writer.write(data)
    writer.commit(len(data), digest_of(data), defer_removal=True)
    return writer


@pytest.mark.parametrize("size", [1000, "parts"])
def test_the_blob_is_published_and_the_records_stay_until_close(
    cstore: Store, size: int | str
) -> None:
    n = 2 * cstore.part_size + 7 if size == "parts" else int(size)
    data = random_bytes(n, seed=81)
    writer = _deferred(cstore, "deferred", data)
    try:
        assert cstore.info(digest_of(data)).size == n  # published before commit returned
        assert read_all(cstore, digest_of(data)) == data
        assert _ingest_keys(cstore), "the removal happened inside the commit"
        with pytest.raises(NotFoundError):
            cstore.status("deferred")
        assert [s.ref for s in cstore.list_statuses()] == []
    finally:
        writer.close()  # type: ignore[attr-defined]
    assert _ingest_keys(cstore) == []
    with pytest.raises(NotFoundError):
        cstore.status("deferred")


def test_other_ingestions_are_still_listed(cstore: Store) -> None:
    data = random_bytes(500, seed=82)
    writer = _deferred(cstore, "over", data)
    try:
        with cstore.writer("going-on") as other:
            other.write(b"xyz")
            other.close()
            listed = {s.ref: s.offset for s in cstore.list_statuses()}
            assert listed == {"going-on": 3}
    finally:
        writer.close()  # type: ignore[attr-defined]
    cstore.abort("going-on")


def test_abort_and_reopen_wait_for_the_close(cstore: Store) -> None:
    data = random_bytes(700, seed=83)
    writer = _deferred(cstore, "waited", data)
    timer = threading.Timer(0.3, writer.close)  # type: ignore[attr-defined]
    timer.start()
    try:
        started = time.monotonic()
        with pytest.raises(NotFoundError):
            cstore.abort("waited")  # the ingestion is over: nothing to abort
        assert time.monotonic() - started < DEADLINE
        assert _ingest_keys(cstore) == []
    finally:
        timer.join(DEADLINE)
    assert cstore.info(digest_of(data)).size == len(data)  # the abort took nothing away

    again = _deferred(cstore, "reopened", data[:10])
    threading.Timer(0.3, again.close).start()  # type: ignore[attr-defined]
    with cstore.writer("reopened", Descriptor(), wait=DEADLINE) as writer2:
        assert writer2.status().offset == 0  # a new ingestion, not the committed one
    cstore.abort("reopened")
