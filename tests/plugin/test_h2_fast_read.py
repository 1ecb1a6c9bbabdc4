"""The h2 engine answers Read on its event loop when the read cache already holds the bytes.

The answers must be exactly the Read handler's: the same bytes, offsets and status for
sequential, random, interleaved and concurrent readers, for a blob deleted under them, and for
a fast path that fails (its handler then runs).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from cargohold.plugin.calls import Call, CallTracker
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.testing.helpers import digest_of, random_bytes

from .conftest import Served, serving
from .test_read_shared import _put, read_concurrently

PIECE = 32 * 1024


@pytest.fixture
def h2_served(plugin_store_url: str) -> Iterator[Served]:
    with serving(plugin_store_url, engine="h2") as s:
        yield s


class _Counting:
    """Wraps ``ContentServicer.read_now``: how many Reads the loop answered itself."""

    def __init__(self, served: Served) -> None:
        self.inner = served.server.servicer.read_now
        self.answered = 0
        self.declined = 0
        served.server.servicer.read_now = self  # type: ignore[method-assign]

    def __call__(self, request: pb.ReadContentRequest) -> pb.ReadContentResponse | None:
        response = self.inner(request)
        if response is None:
            self.declined += request.offset > 0  # from 0 it always declines (a HEAD re-checks)
        else:
            self.answered += 1
        return response


def _read(served: Served, digest: str, offset: int, size: int) -> list[pb.ReadContentResponse]:
    request = pb.ReadContentRequest(digest=digest, offset=offset, size=size)
    return list(served.stub.Read(request, timeout=60))


def _sequential(served: Served, digest: str, total: int, start: int = 0) -> bytes:
    """One Read RPC per 32 KiB, as containerd's proxy ReaderAt under a buffered reader, with
    each message's offset checked."""
    out = bytearray()
    offset = start
    while offset < total:
        for message in _read(served, digest, offset, PIECE):
            assert message.offset == offset
            out += message.data
            offset += len(message.data)
    return bytes(out)


def test_sequential_reads_are_answered_on_the_loop(h2_served: Served) -> None:
    store = h2_served.store
    data = random_bytes(int(2.5 * store.part_size) + 777, seed=71)
    digest = _put(store, data)
    counting = _Counting(h2_served)
    assert _sequential(h2_served, digest, len(data)) == data
    # Every RPC asked the fast path but the first (offset 0 re-checks the blob with a HEAD);
    # those it declined (a window not fetched yet, the next window to start) ran the handler.
    rpcs = -(-len(data) // PIECE)
    assert counting.answered + counting.declined == rpcs - 1
    assert counting.answered > 0
    # The last piece, asked with size 0 (to the end), is the same answer either way.
    tail = len(data) - 1000
    assert b"".join(m.data for m in _read(h2_served, digest, tail, 0)) == data[tail:]


def test_random_interleaved_and_concurrent_readers(h2_served: Served) -> None:
    store = h2_served.store
    data = random_bytes(int(1.5 * store.part_size) + 5, seed=72)
    digest = _put(store, data)
    counting = _Counting(h2_served)
    readers = read_concurrently(
        lambda start: _sequential(h2_served, digest, len(data), start), data
    )
    rng = random.Random(72)
    for _ in range(60):  # random reads meanwhile, also at and past the end
        offset = rng.randrange(0, len(data) + 10)
        size = rng.choice([1, 100, PIECE, 0])
        if offset > len(data):
            with pytest.raises(grpc.RpcError) as err:
                _read(h2_served, digest, offset, size)
            assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
            continue
        want = data[offset : offset + size] if size else data[offset:]
        assert b"".join(m.data for m in _read(h2_served, digest, offset, size)) == want
    readers.check()
    assert counting.answered > 0


def test_a_deleted_blob_answers_not_found_from_offset_zero(h2_served: Served) -> None:
    data = random_bytes(100_000, seed=73)
    digest = _put(h2_served.store, data)
    assert _sequential(h2_served, digest, len(data)) == data
    h2_served.store.delete(digest)
    with pytest.raises(grpc.RpcError) as err:
        _read(h2_served, digest, 0, PIECE)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_failing_fast_path_leaves_the_call_to_its_handler(h2_served: Served) -> None:
    store = h2_served.store
    data = random_bytes(int(1.5 * store.part_size), seed=74)
    digest = _put(store, data)
    failures = []

    def broken(request: pb.ReadContentRequest) -> pb.ReadContentResponse | None:
        failures.append(request.offset)
        raise RuntimeError("a bug in the fast path")

    h2_served.server.servicer.read_now = broken  # type: ignore[method-assign]
    assert _sequential(h2_served, digest, len(data)) == data
    assert len(failures) == -(-len(data) // PIECE)  # every RPC tried it, and was answered


def test_malformed_and_unknown_reads_get_the_handlers_answer(h2_served: Served) -> None:
    missing = digest_of(b"never stored")
    with pytest.raises(grpc.RpcError) as err:
        _read(h2_served, missing, 10, PIECE)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        _read(h2_served, "not-a-digest", 10, PIECE)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


class _Observer:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def rpc_started(self, call: Call) -> None:
        self.events.append(("started", call.service, call.method))

    def rpc_finished(self, call: Call, code: grpc.StatusCode, seconds: float) -> None:
        self.events.append(("finished", call.method, code, seconds >= 0))

    def received(self, service: str, method: str, size: int) -> None:
        self.events.append(("received", method, size))

    def sent(self, service: str, method: str, size: int) -> None:
        self.events.append(("sent", method, size))

    def writer_opened(self, call: Call) -> None:
        raise AssertionError("not a writer")

    def writer_closed(self, call: Call) -> None:
        raise AssertionError("not a writer")


def test_a_call_answered_on_the_loop_is_observed_like_any_other() -> None:
    observer = _Observer()
    tracker = CallTracker(observer)
    tracker.answered("svc", "Read", 40, 32_800, time.monotonic())
    assert observer.events == [
        ("started", "svc", "Read"),
        ("received", "Read", 40),
        ("sent", "Read", 32_800),
        ("finished", "Read", grpc.StatusCode.OK, True),
    ]
    assert tracker.running() == []
    CallTracker(None).answered("svc", "Read", 1, 1, time.monotonic())  # no observer: nothing
