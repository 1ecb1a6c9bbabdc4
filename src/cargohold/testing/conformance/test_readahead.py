"""Read-ahead of ``ReaderAt``: sequential, random, interleaved and concurrent reads, reads past
the end, a blob deleted mid-read and the memory caps, on every driver."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from cargohold import Store
from cargohold.content import ReaderAt
from cargohold.digests import parse_digest
from cargohold.errors import NotFoundError
from cargohold.readahead import PROCESS_BUDGET, ByteBudget

from ..helpers import open_small, random_bytes


def _blob(
    cstore: Store, ingest: Callable[..., str], windows: float, seed: int
) -> tuple[bytes, str]:
    data = random_bytes(int(windows * cstore.part_size) + 1234, seed=seed)
    return data, ingest(data)


def _settled(budget: ByteBudget) -> bool:
    """True once every window fetch still running has given its bytes back."""
    deadline = time.monotonic() + 10
    while budget.used and time.monotonic() < deadline:
        time.sleep(0.01)
    return budget.used == 0


def _sequential(reader: ReaderAt, piece: int, start: int = 0) -> bytes:
    out = bytearray()
    offset = start
    while chunk := reader.read_at(offset, piece):
        out += chunk
        offset += len(chunk)
    return bytes(out)


def test_sequential_small_reads_use_window_sized_gets(
    cstore: Store, ingest: Callable[..., str]
) -> None:
    data, digest = _blob(cstore, ingest, 3.5, seed=1)
    cstore.driver.reset_calls()
    with cstore.reader_at(digest) as reader:
        assert _sequential(reader, cstore.part_size // 8 + 7) == data
        assert reader._ahead.held == 0  # a finished pass holds no window
    windows = -(-len(data) // cstore.part_size)
    gets = cstore.driver.calls["get_range"]
    assert gets <= windows + 2, dict(cstore.driver.calls)
    assert _settled(PROCESS_BUDGET)


def test_random_offsets_match_the_blob(cstore: Store, ingest: Callable[..., str]) -> None:
    data, digest = _blob(cstore, ingest, 2.5, seed=2)
    rng = random.Random(7)
    size = len(data)
    with cstore.reader_at(digest) as reader:
        offset = 0
        for step in range(120):
            if step % 3 == 0:  # jump anywhere, also at and past the end
                offset = rng.randrange(0, size + 50)
            length = rng.choice([1, 100, 4096, cstore.part_size // 3, cstore.part_size + 17])
            got = reader.read_at(offset, length)
            assert got == data[offset : offset + length], (offset, length)
            offset += len(got) if rng.random() < 0.8 else rng.randrange(1, 5000)


def test_reads_past_the_end(cstore: Store, ingest: Callable[..., str]) -> None:
    data, digest = _blob(cstore, ingest, 1.2, seed=3)
    size = len(data)
    with cstore.reader_at(digest) as reader:
        assert _sequential(reader, 1000, start=size - 3000) == data[-3000:]
        assert reader.read_at(size, 10) == b""
        assert reader.read_at(size + 10_000, 10) == b""
        assert reader.read_at(size - 5, 100) == data[-5:]
        assert reader.read_at(0, size * 2) == data


def test_interleaved_sequential_readers(cstore: Store, ingest: Callable[..., str]) -> None:
    data, digest = _blob(cstore, ingest, 3.2, seed=4)
    piece = cstore.part_size // 5 + 3
    with cstore.reader_at(digest) as shared, cstore.reader_at(digest) as other:
        cursors = [0, len(data) // 2, len(data) // 3]
        outs = [bytearray(), bytearray(), bytearray()]
        readers = [shared, shared, other]
        done = [False] * 3
        while not all(done):
            for i in range(3):
                if done[i]:
                    continue
                chunk = readers[i].read_at(cursors[i], piece)
                done[i] = not chunk
                outs[i] += chunk
                cursors[i] += len(chunk)
        assert bytes(outs[0]) == data
        assert bytes(outs[1]) == data[len(data) // 2 :]
        assert bytes(outs[2]) == data[len(data) // 3 :]


def test_concurrent_readers_of_one_reader(cstore: Store, ingest: Callable[..., str]) -> None:
    data, digest = _blob(cstore, ingest, 4.5, seed=5)
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []
    with cstore.reader_at(digest) as reader:

        def run(n: int) -> None:
            try:
                if n == 3:  # one random reader among the sequential ones
                    rng = random.Random(n)
                    for _ in range(60):
                        at = rng.randrange(0, len(data))
                        got = reader.read_at(at, 777)
                        assert got == data[at : at + 777]
                    results[n] = data
                else:
                    results[n] = _sequential(reader, 4096 * (n + 1) + n, start=n * 999)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors
    for n in range(3):
        assert results[n] == data[n * 999 :]
    assert results[3] == data


def test_blob_deleted_mid_read(cargohold_store_url: str) -> None:
    store = open_small(cargohold_store_url, read_streams=2)
    try:
        data = random_bytes(6 * store.part_size + 99, seed=6)
        digest = _commit(store, data)
        piece = store.part_size // 4
        with store.reader_at(digest) as reader:
            assert _sequential_upto(reader, piece, store.part_size) == data[: store.part_size]
            store.delete(digest)
            offset = store.part_size
            with pytest.raises(NotFoundError):
                while offset < len(data):  # held windows give the right bytes, then: gone
                    got = reader.read_at(offset, piece)
                    assert got == data[offset : offset + piece]
                    offset += len(got)
        with pytest.raises(NotFoundError):
            store.reader_at(digest)
    finally:
        store.close()
    assert _settled(PROCESS_BUDGET)


def test_memory_caps_per_reader_and_budget(cstore: Store, ingest: Callable[..., str]) -> None:
    data, digest = _blob(cstore, ingest, 6.3, seed=8)
    key = cstore.layout.blob_key(parse_digest(digest))
    part = cstore.part_size
    budget = ByteBudget(3 * part)
    reader = ReaderAt(cstore.driver, key, len(data), cstore.executor, part, 4, budget)
    other = ReaderAt(cstore.driver, key, len(data), cstore.executor, part, 4, budget)
    out, offset, held = bytearray(), 0, 0
    while chunk := reader.read_at(offset, part // 3):
        out += chunk
        offset += len(chunk)
        assert other.read_at(offset // 2, 100) == data[offset // 2 : offset // 2 + 100]
        assert budget.used <= budget.limit
        held = max(held, reader._ahead.held)
    assert bytes(out) == data
    assert 1 <= held <= 5  # depth 4: at most depth + 1 windows
    reader.close()
    other.close()
    assert _settled(budget)


def test_spent_budget_falls_back_to_exact_reads(cstore: Store, ingest: Callable[..., str]) -> None:
    data, digest = _blob(cstore, ingest, 2.2, seed=9)
    key = cstore.layout.blob_key(parse_digest(digest))
    budget = ByteBudget(0)
    with ReaderAt(cstore.driver, key, len(data), cstore.executor, cstore.part_size, 4, budget) as r:
        assert _sequential(r, 10_000) == data
        assert r._ahead.held == 0


def _commit(store: Store, data: bytes) -> str:
    from ..helpers import digest_of

    with store.writer("deleted-mid-read") as writer:
        writer.write(data)
        writer.commit(len(data), digest_of(data))
    return digest_of(data)


def _sequential_upto(reader: ReaderAt, piece: int, limit: int) -> bytes:
    out = bytearray()
    while len(out) < limit:
        out += reader.read_at(len(out), min(piece, limit - len(out)))
    return bytes(out)


def test_read_ready_answers_only_from_fetched_windows(
    cstore: Store, ingest: Callable[..., str]
) -> None:
    """``read_ready`` (what the h2 engine's loop serves Read from) never asks the driver, and
    every answer it gives, mixed with ``read_at`` as the plugin mixes them, is the blob's."""
    data, digest = _blob(cstore, ingest, 2.5, seed=11)
    piece = 32 * 1024
    answered_now = 0
    rng = random.Random(11)
    with cstore.reader_at(digest) as reader:
        assert reader.read_ready(0, piece) is None  # nothing fetched yet
        offset = 0
        out = bytearray()
        while offset < len(data):
            length = min(piece, len(data) - offset)
            before = dict(cstore.driver.calls)
            got = reader.read_ready(offset, length)
            assert dict(cstore.driver.calls) == before  # no request, ready or not
            if got is None:
                if rng.random() < 0.2:
                    time.sleep(0.01)  # let fetches ahead land, as time between RPCs does
                got = reader.read_at(offset, length)
            else:
                answered_now += 1
            assert got == data[offset : offset + length], offset
            out += got
            offset += len(got)
        assert bytes(out) == data
        # Reads that continue no stream, cross a window or pass the end are never answered.
        assert reader.read_ready(12_345, 100) is None
        assert reader.read_ready(cstore.part_size - 10, 20) is None
        assert reader.read_ready(len(data) - 10, 20) is None
        assert reader.read_ready(len(data), 1) is None
    assert answered_now > 0
    assert _settled(PROCESS_BUDGET)
