"""Status reads are snapshots: they never wait behind a writer's work, and never deadlock with it.

``Store.status`` and ``Store.list_statuses`` must answer while a writer is busy (a part upload,
a checkpoint, a close); writers closing while others list statuses must never freeze the store
(the lock-order deadlock containerd's GC would trip over). Every wait here has a deadline.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime

import pytest

from cargohold import ContentError, Store

from ..helpers import random_bytes

DEADLINE = 30.0


def _in_thread(fn: object, timeout: float = DEADLINE) -> object:
    """Run ``fn`` in a thread and return its result, failing if it does not end in time."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)  # type: ignore[operator]
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"call did not return within {timeout}s"
    return result[0]


@pytest.mark.cargohold_leaves("ingestion")
def test_status_answers_while_the_writer_is_busy(cstore: Store) -> None:
    with cstore.writer("busy") as writer:
        writer.write(b"x" * 1000)
        with writer._lock:  # the writer is in the middle of something long (a part upload)
            status = _in_thread(lambda: cstore.status("busy"), timeout=10)
            listed = _in_thread(lambda: cstore.list_statuses(), timeout=10)
        assert status.offset == 1000  # type: ignore[attr-defined]
        assert [s.offset for s in listed] == [1000]  # type: ignore[attr-defined]


@pytest.mark.cargohold_leaves("ingestion")
def test_accepted_bytes_count_at_once_with_their_time(cstore: Store) -> None:
    with cstore.writer("accepted") as writer:
        writer.write(b"a" * 10)
        before = datetime.now(UTC)
        writer.accept(5)
        after = datetime.now(UTC)
        status = cstore.status("accepted")
        assert status.offset == 15
        assert before <= status.updated_at <= after
        time.sleep(0.01)
        writer.write(b"b" * 5)  # the bytes that were accepted arrive later
        settled = cstore.status("accepted")
        assert settled.offset == 15
        assert settled.updated_at == status.updated_at  # stamped when answered, not applied


@pytest.mark.cargohold_leaves("ingestion")
def test_closing_writers_racing_with_status_listing_never_deadlock(cstore: Store) -> None:
    data = random_bytes(3 * cstore.part_size + 100, seed=9)
    stop = time.monotonic() + 6
    errors: list[BaseException] = []

    def writer_loop(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            ref = f"race-{n}-{i % 3}"
            i += 1
            try:
                with cstore.writer(ref) as writer:
                    writer.write(data[: (i * 7919) % len(data)])
                    if i % 4 == 0:
                        writer.commit(0, "")
            except ContentError:
                pass  # AlreadyExists, Unavailable: fine in a race
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    def status_loop() -> None:
        while time.monotonic() < stop:
            try:
                for status in cstore.list_statuses():
                    with contextlib.suppress(ContentError):
                        cstore.status(status.ref)
            except ContentError:
                pass
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    pool = ThreadPoolExecutor(max_workers=6)
    futures = [pool.submit(writer_loop, n) for n in range(3)]
    futures += [pool.submit(status_loop) for _ in range(3)]
    _, not_done = wait(futures, timeout=6 + DEADLINE)
    pool.shutdown(wait=not not_done)  # never wait on a deadlock: fail instead
    assert not not_done, "writers and status listings deadlocked"
    assert not errors, errors


@pytest.mark.cargohold_leaves("ingestion")
@pytest.mark.parametrize("closing", [True, False])
def test_reopening_a_ref_waits_for_a_closing_writer_only(cstore: Store, closing: bool) -> None:
    first = cstore.writer("reopen")
    first.write(b"abc")
    if closing:
        first.mark_closing()
        threading.Timer(0.3, first.close).start()
        with cstore.writer("reopen", wait=10) as second:
            assert second.status().offset == 3
    else:
        started = time.monotonic()
        with pytest.raises(ContentError):
            cstore.writer("reopen", wait=10)
        assert time.monotonic() - started < 10  # a writer in use is not waited for long
        first.close()
