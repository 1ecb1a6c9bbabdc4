"""Driver calls per RPC of a pull, as containerd makes them: Info, a Write stream, Info, Read.

The budgets are exact: each test names every call the step makes and what it is for, so a
request that creeps back in fails here (docs/performance.md, "Pulls through the plugin").
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from cargohold import Descriptor
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.testing.helpers import random_bytes

from .conftest import Served
from .test_rpcs import code_of, sha

PIECE = 32 * 1024


def _stream(ref: str, data: bytes, chunk: int = 1 << 20) -> Iterator[pb.WriteContentRequest]:
    """containerd's proxy writer: STAT with the total, WRITEs, STAT, COMMIT with the digest."""
    yield pb.WriteContentRequest(action=pb.STAT, ref=ref, total=len(data))
    for start in range(0, len(data), chunk):
        yield pb.WriteContentRequest(
            action=pb.WRITE, offset=start, data=data[start : start + chunk]
        )
    yield pb.WriteContentRequest(action=pb.STAT)
    yield pb.WriteContentRequest(
        action=pb.COMMIT, offset=len(data), total=len(data), expected=sha(data)
    )


def _calls(served: Served) -> dict[str, int]:
    calls = {op: n for op, n in served.store.driver.calls.items() if n}
    served.store.driver.reset_calls()
    return calls


def _pull_one(served: Served, data: bytes, kind: str) -> dict[str, dict[str, int]]:
    """The calls of each step of one blob's pull: Info (absent), Write, Info, Read."""
    digest = sha(data)
    steps: dict[str, dict[str, int]] = {}
    served.store.driver.reset_calls()
    assert code_of(lambda: served.stub.Info(pb.InfoRequest(digest=digest))) == (
        grpc.StatusCode.NOT_FOUND
    )
    steps["info absent"] = _calls(served)
    replies = list(served.stub.Write(_stream(f"default/1/{kind}-{digest}", data)))
    assert replies[-1].action == pb.COMMIT and replies[-1].digest == digest
    steps["write"] = _calls(served)
    assert served.stub.Info(pb.InfoRequest(digest=digest)).info.size == len(data)
    steps["info"] = _calls(served)
    request = pb.ReadContentRequest(digest=digest, offset=0, size=PIECE)
    got = b"".join(r.data for r in served.stub.Read(request))
    assert got == data[:PIECE]
    steps["read"] = _calls(served)
    return steps


def test_a_small_blobs_pull_costs_no_head_of_the_blob_after_info(served: Served) -> None:
    steps = _pull_one(served, b'{"schemaVersion": 2}', "manifest")
    assert steps["info absent"] == {"head": 1}
    # open: the lease (carrying the first record), the state get (none); commit: this node's
    # holder record, the deletion-marker check, the lease renewal, the create-only put (which
    # answers "already exists" itself: no HEAD of the blob), the lease's release.
    assert steps["write"] == {"put": 4, "get": 1, "head": 1, "delete": 1}, steps
    assert steps["info"]["head"] == 1 and sum(steps["info"].values()) <= 2, steps
    # The reader uses the size Info just answered: only the blob's get.
    assert steps["read"] == {"get_range": 1}, steps


def test_a_layers_pull_costs_no_head_of_the_blob_after_info(served: Served) -> None:
    store = served.store
    data = random_bytes(store.part_size + 5000, seed=77)
    steps = _pull_one(served, data, "layer")
    write = steps["write"]
    # The ref's digest is the upload's hint: the session completes create-only at the blob
    # key, which answers "already exists" itself. The only HEAD is the deletion marker's.
    assert write.get("head") == 1, steps
    assert write.get("upload_part") == 2 and write.get("complete_upload") == 1, steps
    assert "copy" not in write, steps
    # lease put, state get, start, session state put, holder put, renewal, 2 parts,
    # complete, state delete, lease delete, marker head.
    assert sum(write.values()) == 12, steps
    assert "head" not in steps["read"], steps


def test_a_cached_reader_still_checks_the_blob_at_offset_0(served: Served) -> None:
    data = random_bytes(100_000, seed=78)
    digest = sha(data)
    list(served.stub.Write(_stream(f"default/2/layer-{digest}", data)))
    served.stub.Info(pb.InfoRequest(digest=digest))
    first = pb.ReadContentRequest(digest=digest, offset=0, size=PIECE)
    assert b"".join(r.data for r in served.stub.Read(first)) == data[:PIECE]
    served.store.driver.reset_calls()
    served.stub.Info(pb.InfoRequest(digest=digest))
    _calls(served)
    # A second pass over the same (cached) reader re-checks with a HEAD: its windows may
    # hold bytes of a blob deleted meanwhile.
    assert b"".join(r.data for r in served.stub.Read(first)) == data[:PIECE]
    assert _calls(served).get("head") == 1


def test_a_read_after_info_of_a_deleted_blob_is_not_found(served: Served) -> None:
    data = random_bytes(100_000, seed=79)
    digest = sha(data)
    list(served.stub.Write(_stream(f"default/3/layer-{digest}", data)))
    served.stub.Info(pb.InfoRequest(digest=digest))
    served.store.delete(digest)  # behind the server's back: its noted size is now stale
    request = pb.ReadContentRequest(digest=digest, offset=0, size=PIECE)
    assert code_of(lambda: list(served.stub.Read(request))) == grpc.StatusCode.NOT_FOUND


def test_a_read_past_the_end_after_info_still_heads(served: Served) -> None:
    data = b"short blob"
    digest = sha(data)
    list(served.stub.Write(_stream(f"default/4/layer-{digest}", data)))
    served.stub.Info(pb.InfoRequest(digest=digest))
    served.store.delete(digest)
    # No get would find it gone (nothing to read there): the HEAD answers instead.
    request = pb.ReadContentRequest(digest=digest, offset=len(data))
    assert code_of(lambda: list(served.stub.Read(request))) == grpc.StatusCode.NOT_FOUND


def _store_behind(served: Served, data: bytes) -> None:
    """Another node commits the same bytes while this one is still writing them."""
    digest = sha(data)
    with served.store.writer(f"other/{digest}", Descriptor(digest=digest, size=len(data))) as w:
        w.write(data)
        w.commit(len(data), digest)


def _commit_racing_another_writer(served: Served, data: bytes, ref: str) -> grpc.StatusCode:
    def requests() -> Iterator[pb.WriteContentRequest]:
        stream = _stream(ref, data)
        for request in stream:
            if request.action == pb.COMMIT:
                _store_behind(served, data)
            yield request

    return code_of(lambda: list(served.stub.Write(requests())))


def test_a_commit_racing_another_writer_is_already_exists_and_leaves_nothing(
    served: Served,
) -> None:
    small = b"raced small blob"
    large = random_bytes(served.store.part_size + 3000, seed=80)
    for n, data in enumerate((small, large)):
        ref = f"default/5/layer-{sha(data)}"
        assert _commit_racing_another_writer(served, data, ref) == grpc.StatusCode.ALREADY_EXISTS
        assert code_of(lambda: served.stub.Status(pb.StatusRequest(ref=ref))) == (  # noqa: B023
            grpc.StatusCode.NOT_FOUND
        ), n
        assert served.stub.ListStatuses(pb.ListStatusesRequest()).statuses == []
        assert sha(data) in served.server.holdings.held()
        assert not list(served.store.driver.list_uploads(served.store.layout.root))
