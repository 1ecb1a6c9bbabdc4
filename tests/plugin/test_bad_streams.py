"""Write streams that go wrong (wrong offset, wrong digest, a vanished client); Read past end."""

from __future__ import annotations

import hashlib
import queue
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from cargohold.plugin.gen import content_pb2 as pb

from .conftest import Served


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rpc_error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    return info.value


def _stream(served: Served) -> tuple[queue.Queue[pb.WriteContentRequest | None], Any]:
    """A Write call fed from a queue (None ends it): send one request, read its reply."""
    outbox: queue.Queue[pb.WriteContentRequest | None] = queue.Queue()

    def requests() -> Iterator[pb.WriteContentRequest]:
        while (item := outbox.get()) is not None:
            yield item

    return outbox, served.stub.Write(requests())


def test_write_at_wrong_offset(served: Served) -> None:
    reqs = [
        pb.WriteContentRequest(action=pb.WRITE, ref="r/1/a", offset=0, data=b"abcd"),
        pb.WriteContentRequest(action=pb.WRITE, offset=9, data=b"efgh"),
    ]
    err = rpc_error(lambda: list(served.stub.Write(iter(reqs))))
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE
    assert served.stub.Status(pb.StatusRequest(ref="r/1/a")).status.offset == 4


def test_commit_with_wrong_digest_keeps_ingestion(served: Served) -> None:
    reqs = [
        pb.WriteContentRequest(action=pb.WRITE, ref="r/2/b", offset=0, data=b"payload"),
        pb.WriteContentRequest(action=pb.COMMIT, offset=7, total=7, expected=sha(b"other")),
    ]
    err = rpc_error(lambda: list(served.stub.Write(iter(reqs))))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert served.stub.Status(pb.StatusRequest(ref="r/2/b")).status.offset == 7
    # The wrong digest left no blob and no claim behind; the ingestion can still be committed.
    fix = [
        pb.WriteContentRequest(action=pb.STAT, ref="r/2/b"),
        pb.WriteContentRequest(action=pb.COMMIT, offset=7, total=7, expected=sha(b"payload")),
    ]
    assert list(served.stub.Write(iter(fix)))[-1].digest == sha(b"payload")
    assert served.server.holdings.held() == {sha(b"payload")}


def test_commit_with_wrong_size(served: Served) -> None:
    reqs = [
        pb.WriteContentRequest(action=pb.WRITE, ref="r/3/c", offset=0, data=b"12345"),
        pb.WriteContentRequest(action=pb.COMMIT, offset=5, total=6),
    ]
    assert rpc_error(lambda: list(served.stub.Write(iter(reqs)))).code() == (
        grpc.StatusCode.FAILED_PRECONDITION
    )


def test_client_disconnect_mid_write_is_resumable(served: Served) -> None:
    data = b"x" * 300_000
    outbox, call = _stream(served)
    outbox.put(pb.WriteContentRequest(action=pb.STAT, ref="r/4/d", total=len(data)))
    next(call)
    outbox.put(pb.WriteContentRequest(action=pb.WRITE, offset=0, data=data[:100_000]))
    assert next(call).offset == 100_000
    call.cancel()  # the client goes away without committing or closing cleanly
    outbox.put(None)

    deadline = time.monotonic() + 20
    while True:  # the server closes the writer shortly after the cancel
        try:
            resumed = list(
                served.stub.Write(iter([pb.WriteContentRequest(action=pb.STAT, ref="r/4/d")]))
            )
            break
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert resumed[0].offset == 100_000
    assert resumed[0].digest == sha(data[:100_000])

    rest = [
        pb.WriteContentRequest(action=pb.STAT, ref="r/4/d"),
        pb.WriteContentRequest(
            action=pb.COMMIT, offset=100_000, data=data[100_000:], expected=sha(data)
        ),
    ]
    assert list(served.stub.Write(iter(rest)))[-1].digest == sha(data)


def test_read_past_end(served: Served) -> None:
    reqs = [pb.WriteContentRequest(action=pb.COMMIT, ref="r/5/e", offset=0, data=b"tiny")]
    digest = list(served.stub.Write(iter(reqs)))[-1].digest
    err = rpc_error(lambda: list(served.stub.Read(pb.ReadContentRequest(digest=digest, offset=5))))
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE
    missing = pb.ReadContentRequest(digest=sha(b"absent"))
    assert rpc_error(lambda: list(served.stub.Read(missing))).code() == grpc.StatusCode.NOT_FOUND


def test_unexpected_error_is_internal_not_a_dropped_stream(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*filters: str) -> Iterator[object]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(served.store, "walk", boom)
    err = rpc_error(lambda: list(served.stub.List(pb.ListContentRequest())))
    assert err.code() == grpc.StatusCode.INTERNAL
    assert "disk on fire" in (err.details() or "")


def test_concurrent_writer_on_same_ref_is_unavailable(served: Served) -> None:
    outbox: queue.Queue[pb.WriteContentRequest | None] = queue.Queue()

    def requests() -> Iterator[pb.WriteContentRequest]:
        while (item := outbox.get()) is not None:
            yield item

    call = served.stub.Write(requests())
    outbox.put(pb.WriteContentRequest(action=pb.STAT, ref="r/6/f"))
    next(call)
    second = [pb.WriteContentRequest(action=pb.STAT, ref="r/6/f")]
    assert rpc_error(lambda: list(served.stub.Write(iter(second)))).code() == (
        grpc.StatusCode.UNAVAILABLE
    )
    outbox.put(None)
    assert list(call) == []  # the first stream ends cleanly after its half-close


def test_write_replies_ahead_and_stat_reports_settled_digest(served: Served) -> None:
    outbox, replies = _stream(served)
    chunks = [bytes([n]) * 70_000 for n in range(5)]
    outbox.put(pb.WriteContentRequest(action=pb.STAT, ref="r/7/g"))
    assert next(replies).offset == 0
    offset = 0
    for chunk in chunks:
        outbox.put(pb.WriteContentRequest(action=pb.WRITE, offset=offset, data=chunk))
        reply = next(replies)
        offset += len(chunk)
        # The reply is sent before the bytes are hashed: offset yes, digest not yet.
        assert (reply.offset, reply.digest) == (offset, "")
    outbox.put(pb.WriteContentRequest(action=pb.STAT))
    stat = next(replies)
    assert (stat.offset, stat.digest) == (offset, sha(b"".join(chunks)))
    digest = stat.digest
    outbox.put(pb.WriteContentRequest(action=pb.COMMIT, offset=offset, expected=digest))
    assert next(replies).digest == sha(b"".join(chunks))
    outbox.put(None)


def test_write_failing_behind_its_reply_fails_the_next_request(served: Served) -> None:
    outbox, replies = _stream(served)
    outbox.put(pb.WriteContentRequest(action=pb.WRITE, ref="r/8/h", offset=0, data=b"a" * 1000))
    assert next(replies).offset == 1000
    outbox.put(pb.WriteContentRequest(action=pb.STAT))
    assert next(replies).digest == sha(b"a" * 1000)
    served.stub.Abort(pb.AbortRequest(ref="r/8/h"))  # the writer's next write fails
    outbox.put(pb.WriteContentRequest(action=pb.WRITE, offset=1000, data=b"b" * 1000))
    assert next(replies).offset == 2000
    outbox.put(pb.WriteContentRequest(action=pb.STAT))
    with pytest.raises(grpc.RpcError) as info:
        next(replies)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "aborted" in (info.value.details() or "")
    outbox.put(None)
    with pytest.raises(grpc.RpcError) as gone:
        served.stub.Status(pb.StatusRequest(ref="r/8/h"))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
