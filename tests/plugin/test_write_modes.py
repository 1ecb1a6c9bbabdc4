"""Both ways of answering a WRITE describe every answered write in Status, at once.

With write-behind (the default) a WRITE is answered before its bytes are applied; the Status RPC
(another call, as containerd's ``Status`` is) must still count them, with the time they were
answered. Without it (``--no-write-behind``) the bytes are applied first and the reply carries
the digest.
"""

from __future__ import annotations

import hashlib
import queue
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest

import cargohold
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.gen import content_pb2_grpc as pb_grpc
from cargohold.plugin.server import ContentServer, Operations, parse_address


@pytest.mark.parametrize("write_behind", [True, False])
def test_status_counts_every_answered_write(write_behind: bool) -> None:
    store = cargohold.open_store(f"memory://write-modes-{write_behind}/s")
    server = ContentServer(
        store,
        "node-a",
        parse_address("tcp://127.0.0.1:0"),
        workers=4,
        operations=Operations(health_interval=0, write_behind=write_behind),
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = pb_grpc.ContentStub(channel)  # type: ignore[no-untyped-call]
    outbox: queue.Queue[pb.WriteContentRequest | None] = queue.Queue()

    def requests() -> Iterator[pb.WriteContentRequest]:
        while (item := outbox.get()) is not None:
            yield item

    try:
        replies = stub.Write(requests())
        outbox.put(pb.WriteContentRequest(action=pb.STAT, ref="modes"))
        assert next(replies).offset == 0
        data, offset = b"", 0
        for n in range(4):
            chunk = bytes([n]) * (300_000 + n)
            before = datetime.now(UTC)
            outbox.put(pb.WriteContentRequest(action=pb.WRITE, offset=offset, data=chunk))
            reply = next(replies)
            after = datetime.now(UTC)
            data, offset = data + chunk, offset + len(chunk)
            assert reply.offset == offset
            if not write_behind:
                assert reply.digest == "sha256:" + hashlib.sha256(data).hexdigest()
            status = stub.Status(pb.StatusRequest(ref="modes")).status
            assert status.offset == offset
            updated = status.updated_at.ToDatetime(tzinfo=UTC)
            assert before <= updated <= after
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        outbox.put(pb.WriteContentRequest(action=pb.COMMIT, offset=offset, expected=digest))
        assert next(replies).digest == digest
        outbox.put(None)
        assert stub.Info(pb.InfoRequest(digest=digest)).info.size == len(data)
    finally:
        outbox.put(None)
        channel.close()
        server.stop(grace=2)
        store.close()
