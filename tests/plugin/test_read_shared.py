"""Read RPCs of one blob share a reader: containerd's 32 KiB reads cost window-sized gets."""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
import pytest

from cargohold import Descriptor
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.readcache import EXPIRY_STEP, ReaderCache, shared_readers
from cargohold.store import Store
from cargohold.testing.helpers import digest_of, random_bytes

from .conftest import Served

PIECE = 32 * 1024


def _put(store: Store, data: bytes) -> str:
    digest = digest_of(data)
    with store.writer(f"put-{digest}", Descriptor(digest=digest, size=len(data))) as writer:
        writer.write(data)
        writer.commit(len(data), digest)
    return digest


def _read_like_containerd(served: Served, digest: str, size: int, start: int = 0) -> bytes:
    """One Read RPC per 32 KiB, as containerd's proxy ReaderAt under a buffered reader."""
    out = bytearray()
    offset = start
    while offset < size:
        request = pb.ReadContentRequest(digest=digest, offset=offset, size=PIECE)
        for resp in served.stub.Read(request):
            out += resp.data
        offset = start + len(out)
    return bytes(out)


def test_short_reads_of_one_blob_share_window_gets(served: Served) -> None:
    store = served.store
    data = random_bytes(int(2.5 * store.part_size) + 777, seed=31)
    digest = _put(store, data)
    store.driver.reset_calls()
    assert _read_like_containerd(served, digest, len(data)) == data
    calls = dict(store.driver.calls)
    windows = -(-len(data) // store.part_size)
    assert calls.get("get_range", 0) <= windows + 2, calls
    assert calls.get("head", 0) <= 2, calls  # one to open, one for the pass from offset 0


class read_concurrently:
    """Four readers of one blob at once, from 0 (twice), from inside the first window and
    from the middle, each reading ``read(start)`` to the end on a thread of its own; ``check``
    waits for them (120 s at most) and compares what each read with the blob."""

    def __init__(self, read: Callable[[int], bytes], data: bytes) -> None:
        self.data = data
        self.starts = [0, 0, 12_345, len(data) // 2]
        self.got: dict[int, bytes] = {}

        def run(n: int) -> None:
            self.got[n] = read(self.starts[n])

        self.threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
        for t in self.threads:
            t.start()

    def check(self) -> None:
        for t in self.threads:
            t.join(timeout=120)
        for n, start in enumerate(self.starts):
            assert self.got.get(n) == self.data[start:], n


def test_concurrent_rpc_readers_of_one_blob(served: Served) -> None:
    data = random_bytes(int(1.5 * served.store.part_size) + 5, seed=32)
    digest = _put(served.store, data)
    read_concurrently(
        lambda start: _read_like_containerd(served, digest, len(data), start), data
    ).check()


def test_a_deleted_blob_is_not_served_from_the_cache(served: Served) -> None:
    data = random_bytes(100_000, seed=33)
    digest = _put(served.store, data)
    assert _read_like_containerd(served, digest, len(data)) == data
    served.store.delete(digest)
    with pytest.raises(grpc.RpcError) as err:
        list(served.stub.Read(pb.ReadContentRequest(digest=digest, offset=0, size=PIECE)))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_cache_is_bounded_and_expires_idle_readers(served: Served) -> None:
    store = served.store
    digests = [_put(store, random_bytes(1000 + n, seed=40 + n)) for n in range(4)]
    cache = ReaderCache(store, max_readers=2, idle_seconds=5.0)
    now = [100.0]
    cache.clock = lambda: now[0]
    for n, digest in enumerate(digests):
        with cache.lease(digest) as reader:
            assert reader.read_at(0, 10) == random_bytes(1000 + n, seed=40 + n)[:10]
    assert len(cache) == 2  # the least recently used went beyond the cap
    with cache.lease(digests[0]) as held:
        now[0] += 60  # the others are idle now; this one is in use
        with cache.lease(digests[1]):
            pass
        assert len(cache) == 2  # the idle ones went; the one in use and the fresh one stay
        assert held.read_at(0, 5) == random_bytes(1000, seed=40)[:5]
    now[0] += 60
    with cache.lease(digests[2]):
        pass
    assert len(cache) == 1
    cache.close()
    assert len(cache) == 0
    assert shared_readers(store) is shared_readers(store)


def test_idle_readers_go_within_one_expiry_step(served: Served) -> None:
    store = served.store
    first, second = (_put(store, random_bytes(500, seed=60 + n)) for n in range(2))
    cache = ReaderCache(store, idle_seconds=5.0)
    now = [100.0]
    cache.clock = lambda: now[0]
    with cache.lease(first):
        pass  # a scan runs (the first give), the next one not before 100 + EXPIRY_STEP
    now[0] = 104.5
    with cache.lease(second):
        pass  # scanned: the first reader has been idle 4.5 s, under its 5
    assert len(cache) == 2
    now[0] = 104.5 + EXPIRY_STEP * 0.8  # idle past 5 s, but the next scan is not due yet
    with cache.lease(second):
        pass
    assert len(cache) == 2
    now[0] = 104.5 + EXPIRY_STEP  # due: the idle reader goes
    with cache.lease(second) as reader:
        assert reader.read_at(0, 10) == random_bytes(500, seed=61)[:10]
    assert len(cache) == 1
    cache.close()


def test_a_pass_right_after_info_skips_its_head_only_when_it_gets(served: Served) -> None:
    """containerd reads a manifest again (Info, then Read from 0): a cached reader whose pass
    ended holds no window, so the read is a get, which finds a deleted blob; no HEAD first."""
    store = served.store
    data = random_bytes(5000, seed=34)
    digest = _put(store, data)
    assert _read_like_containerd(served, digest, len(data)) == data  # cached, pass ended
    served.stub.Info(pb.InfoRequest(digest=digest))
    store.driver.reset_calls()
    assert _read_like_containerd(served, digest, len(data)) == data
    calls = {op: n for op, n in store.driver.calls.items() if n}
    assert calls == {"get_range": 1}, calls
    # Deleted after the Info: the get finds it gone.
    served.stub.Info(pb.InfoRequest(digest=digest))
    store.delete(digest)
    with pytest.raises(grpc.RpcError) as err:
        list(served.stub.Read(pb.ReadContentRequest(digest=digest, offset=0, size=PIECE)))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_pass_whose_first_window_is_held_still_heads(served: Served) -> None:
    store = served.store
    data = random_bytes(int(2.5 * store.part_size), seed=35)
    digest = _put(store, data)
    # A pass that stops inside the first window keeps it.
    request = pb.ReadContentRequest(digest=digest, offset=0, size=PIECE)
    assert b"".join(r.data for r in served.stub.Read(request)) == data[:PIECE]
    served.stub.Info(pb.InfoRequest(digest=digest))
    store.delete(digest)
    with pytest.raises(grpc.RpcError) as err:  # its bytes are held: the HEAD finds it gone
        list(served.stub.Read(request))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
