"""Every RPC of the content service through a real gRPC channel (memory:// and S3)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.servicer import READ_CHUNK

from .conftest import Served


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_blob(served: Served, ref: str, data: bytes, labels: dict[str, str] | None = None) -> str:
    digest = sha(data)

    def requests() -> Iterator[pb.WriteContentRequest]:
        yield pb.WriteContentRequest(action=pb.STAT, ref=ref, total=len(data))
        yield pb.WriteContentRequest(action=pb.WRITE, offset=0, data=data[: len(data) // 2])
        yield pb.WriteContentRequest(
            action=pb.COMMIT,
            offset=len(data) // 2,
            data=data[len(data) // 2 :],
            total=len(data),
            expected=digest,
            labels=labels or {},
        )

    replies = list(served.stub.Write(requests()))
    assert [r.action for r in replies] == [pb.STAT, pb.WRITE, pb.COMMIT]
    assert replies[-1].offset == len(data)
    assert replies[-1].digest == digest
    return digest


def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    code: grpc.StatusCode = info.value.code()
    return code


def test_write_info_read_list_delete(served: Served) -> None:
    data = bytes(range(256)) * 9000  # > 2 MiB: several Read chunks
    digest = write_blob(served, "default/1/layer", data, {"containerd.io/gc.root": "x"})

    info = served.stub.Info(pb.InfoRequest(digest=digest)).info
    assert (info.digest, info.size) == (digest, len(data))
    assert dict(info.labels) == {"containerd.io/gc.root": "x"}
    assert info.created_at.seconds > 0

    chunks = list(served.stub.Read(pb.ReadContentRequest(digest=digest)))
    assert b"".join(c.data for c in chunks) == data
    assert all(len(c.data) <= READ_CHUNK for c in chunks)
    assert [c.offset for c in chunks] == [i * READ_CHUNK for i in range(len(chunks))]

    part = list(served.stub.Read(pb.ReadContentRequest(digest=digest, offset=1000, size=70)))
    assert b"".join(c.data for c in part) == data[1000:1070]
    assert part[0].offset == 1000
    tail = list(served.stub.Read(pb.ReadContentRequest(digest=digest, offset=len(data) - 5)))
    assert b"".join(c.data for c in tail) == data[-5:]
    at_end = list(served.stub.Read(pb.ReadContentRequest(digest=digest, offset=len(data))))
    assert b"".join(c.data for c in at_end) == b""

    listed = [i.digest for r in served.stub.List(pb.ListContentRequest()) for i in r.info]
    assert listed == [digest]
    filtered = served.stub.List(pb.ListContentRequest(filters=[f"digest=={sha(b'other')}"]))
    assert [i for r in filtered for i in r.info] == []

    served.stub.Delete(pb.DeleteContentRequest(digest=digest))
    assert (
        code_of(lambda: served.stub.Info(pb.InfoRequest(digest=digest)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert code_of(lambda: served.stub.Delete(pb.DeleteContentRequest(digest=digest))) == (
        grpc.StatusCode.NOT_FOUND
    )


def test_update_labels(served: Served) -> None:
    digest = write_blob(served, "default/2/cfg", b"{}", {"a": "1", "b": "2"})
    info = pb.Info(digest=digest, labels={"a": "10", "c": "3"})
    updated = served.stub.Update(
        pb.UpdateRequest(info=info, update_mask=FieldMask(paths=["labels.a", "labels.b"]))
    ).info
    assert dict(updated.labels) == {"a": "10"}
    replaced = served.stub.Update(pb.UpdateRequest(info=info)).info
    assert dict(replaced.labels) == {"a": "10", "c": "3"}
    bad = pb.UpdateRequest(info=info, update_mask=FieldMask(paths=["size"]))
    assert code_of(lambda: served.stub.Update(bad)) == grpc.StatusCode.INVALID_ARGUMENT
    missing = pb.UpdateRequest(info=pb.Info(digest=sha(b"nope")))
    assert code_of(lambda: served.stub.Update(missing)) == grpc.StatusCode.NOT_FOUND


def test_status_list_statuses_abort(served: Served) -> None:
    def partial(ref: str) -> Iterator[pb.WriteContentRequest]:
        yield pb.WriteContentRequest(action=pb.STAT, ref=ref, total=10, expected=sha(b"0123456789"))
        yield pb.WriteContentRequest(action=pb.WRITE, offset=0, data=b"0123")

    replies = list(served.stub.Write(partial("default/3/a")))
    assert replies[-1].offset == 4
    list(served.stub.Write(partial("default/4/b")))

    status = served.stub.Status(pb.StatusRequest(ref="default/3/a")).status
    assert (status.ref, status.offset, status.total) == ("default/3/a", 4, 10)
    assert status.expected == sha(b"0123456789")

    refs = sorted(s.ref for s in served.stub.ListStatuses(pb.ListStatusesRequest()).statuses)
    assert refs == ["default/3/a", "default/4/b"]
    only = served.stub.ListStatuses(pb.ListStatusesRequest(filters=['ref=="default/4/b"']))
    assert [s.ref for s in only.statuses] == ["default/4/b"]
    bad = pb.ListStatusesRequest(filters=["ref=="])
    assert code_of(lambda: served.stub.ListStatuses(bad)) == grpc.StatusCode.INVALID_ARGUMENT

    served.stub.Abort(pb.AbortRequest(ref="default/3/a"))
    assert code_of(lambda: served.stub.Status(pb.StatusRequest(ref="default/3/a"))) == (
        grpc.StatusCode.NOT_FOUND
    )
    assert code_of(lambda: served.stub.Abort(pb.AbortRequest(ref="default/3/a"))) == (
        grpc.StatusCode.NOT_FOUND
    )


def test_write_of_existing_digest_is_already_exists(served: Served) -> None:
    digest = write_blob(served, "default/5/x", b"same bytes")
    stat = pb.WriteContentRequest(action=pb.STAT, ref="default/6/x", total=10, expected=digest)
    assert code_of(lambda: list(served.stub.Write(iter([stat])))) == grpc.StatusCode.ALREADY_EXISTS


def test_bad_digest_is_invalid_argument(served: Served) -> None:
    assert code_of(lambda: served.stub.Info(pb.InfoRequest(digest="md5:abc"))) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    first = pb.WriteContentRequest(action=pb.STAT, ref="")
    assert code_of(lambda: list(served.stub.Write(iter([first])))) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
