"""Every method of the content service, with hostile requests, against a real ``cargohold serve``.

Each request must end in success or a typed error (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
FAILED_PRECONDITION, OUT_OF_RANGE, UNAVAILABLE), within a deadline, and the seeded blobs, their
labels and the seeded ingestion must be exactly as they were after it (``Served.check_seeds``).
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from hypothesis import given
from hypothesis import strategies as st

from cargohold.plugin.gen import content_pb2 as pb

from . import strategies as hs
from .conftest import CALL_DEADLINE, SEED_BLOBS, Served, fuzz_settings, sha

SEEDED = {sha(data): data for data, _ in SEED_BLOBS.values()}


@fuzz_settings
@given(digest=hs.read_digests)
def test_info(served: Served, digest: str) -> None:
    reply = served.call(
        lambda: served.stub.Info(pb.InfoRequest(digest=digest), timeout=CALL_DEADLINE)
    )
    if isinstance(reply, pb.InfoResponse):
        assert reply.info.digest == digest
    served.check_seeds()


@fuzz_settings
@given(digest=hs.read_digests, offset=hs.hostile_ints, size=hs.hostile_ints)
def test_read(served: Served, digest: str, offset: int, size: int) -> None:
    request = pb.ReadContentRequest(digest=digest, offset=offset, size=size)
    reply = served.call(lambda: list(served.stub.Read(request, timeout=CALL_DEADLINE)))
    if digest in SEEDED and not isinstance(reply, grpc.StatusCode):
        data = SEEDED[digest]
        start = max(offset, 0)
        end = len(data) if size <= 0 else min(len(data), start + size)
        assert b"".join(r.data for r in reply) == data[start:end]
    elif digest in SEEDED:
        assert reply == grpc.StatusCode.OUT_OF_RANGE
        assert offset > len(SEEDED[digest])
    served.check_seeds()


@fuzz_settings
@given(
    digest=st.one_of(st.just(sha(b"fuzz target")), hs.target_digests),
    size=hs.hostile_ints,
    labels=hs.labels,
    paths=st.one_of(st.none(), hs.masks),
)
def test_update(
    served: Served, digest: str, size: int, labels: dict[str, str], paths: list[str] | None
) -> None:
    _commit(served, b"fuzz target")
    request = pb.UpdateRequest(info=pb.Info(digest=digest, size=size, labels=labels))
    if paths is not None:
        request.update_mask.CopyFrom(FieldMask(paths=paths))
    served.call(lambda: served.stub.Update(request, timeout=CALL_DEADLINE))
    served.check_seeds()


@fuzz_settings
@given(digest=st.one_of(st.just(sha(b"fuzz target")), hs.target_digests))
def test_delete(served: Served, digest: str) -> None:
    _commit(served, b"fuzz target")
    request = pb.DeleteContentRequest(digest=digest)
    served.call(lambda: served.stub.Delete(request, timeout=CALL_DEADLINE))
    served.check_seeds()


@fuzz_settings
@given(filters=hs.filter_lists)
def test_list(served: Served, filters: list[str]) -> None:
    request = pb.ListContentRequest(filters=filters)
    reply = served.call(lambda: list(served.stub.List(request, timeout=CALL_DEADLINE)))
    if not isinstance(reply, grpc.StatusCode) and not filters:
        listed = {info.digest for r in reply for info in r.info}
        assert set(SEEDED) <= listed
    served.check_seeds()


@fuzz_settings
@given(ref=hs.refs)
def test_status_and_abort(served: Served, ref: str) -> None:
    served.call(lambda: served.stub.Status(pb.StatusRequest(ref=ref), timeout=CALL_DEADLINE))
    served.call(lambda: served.stub.Abort(pb.AbortRequest(ref=ref), timeout=CALL_DEADLINE))
    served.check_seeds()


@fuzz_settings
@given(filters=hs.filter_lists)
def test_list_statuses(served: Served, filters: list[str]) -> None:
    request = pb.ListStatusesRequest(filters=filters)
    reply = served.call(lambda: served.stub.ListStatuses(request, timeout=CALL_DEADLINE))
    if not isinstance(reply, grpc.StatusCode) and not filters:
        assert "seed/ingestion" in {s.ref for s in reply.statuses}
    served.check_seeds()


@fuzz_settings
@given(requests=hs.write_streams())
def test_write_stream(served: Served, requests: list[pb.WriteContentRequest]) -> None:
    replies = served.write(requests)
    if not isinstance(replies, grpc.StatusCode):
        for reply in replies:
            assert reply.offset >= 0
            if reply.action == pb.COMMIT:  # a committed blob's bytes hash to its digest
                read = served.stub.Read(
                    pb.ReadContentRequest(digest=reply.digest), timeout=CALL_DEADLINE
                )
                assert sha(b"".join(r.data for r in read)) == reply.digest
    served.check_seeds()


@fuzz_settings
@given(first=hs.write_streams(), second=hs.write_streams())
def test_write_streams_on_one_ref(
    served: Served, first: list[pb.WriteContentRequest], second: list[pb.WriteContentRequest]
) -> None:
    """Two streams one after the other on the same ref: the second resumes or restarts it."""
    first[0].ref = second[0].ref = "f/shared"
    served.write(first)
    served.write(second)
    served.check_seeds()


def _commit(served: Served, data: bytes) -> None:
    """Make sure a blob with ``data`` exists (the target the fuzzing may change or delete)."""
    requests = [pb.WriteContentRequest(action=pb.COMMIT, ref="f/target", data=data)]
    reply = served.call(lambda: list(served.stub.Write(iter(requests), timeout=CALL_DEADLINE)))
    assert not isinstance(reply, grpc.StatusCode) or reply == grpc.StatusCode.ALREADY_EXISTS


# ---- invalid UTF-8 in string fields --------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited protobuf field (a string, bytes or sub-message) on the wire."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


NON_UTF8 = b"ref-\xff\xfe"
RAW_REQUESTS = {
    "Info": (_field(1, b"sha256:\xff"), pb.InfoResponse, False),
    "Update": (
        _field(1, _field(5, _field(1, NON_UTF8) + _field(2, b"v"))),
        pb.UpdateResponse,
        False,
    ),
    "List": (_field(1, b"labels.a==" + NON_UTF8), pb.ListContentResponse, True),
    "Delete": (_field(1, NON_UTF8), pb.InfoResponse, False),
    "Read": (_field(1, NON_UTF8), pb.ReadContentResponse, True),
    "Status": (_field(1, NON_UTF8), pb.StatusResponse, False),
    "ListStatuses": (_field(1, NON_UTF8), pb.ListStatusesResponse, False),
    "Abort": (_field(1, NON_UTF8), pb.InfoResponse, False),
}


@pytest.mark.parametrize("method", sorted(RAW_REQUESTS))
def test_non_utf8_string_field_is_invalid_argument(served: Served, method: str) -> None:
    request, reply, stream = RAW_REQUESTS[method]
    assert served.raw(method, request, reply, stream=stream) == grpc.StatusCode.INVALID_ARGUMENT
    served.check_seeds()


@pytest.mark.parametrize("later", [False, True], ids=["first", "later"])
def test_non_utf8_ref_on_write_is_invalid_argument(served: Served, later: bool) -> None:
    rpc = served.channel.stream_stream(
        "/containerd.services.content.v1.Content/Write",
        request_serializer=None,
        response_deserializer=pb.WriteContentResponse.FromString,
    )
    messages = [_field(2, NON_UTF8)]
    if later:
        opening = pb.WriteContentRequest(action=pb.WRITE, ref="f/utf8", data=b"abc")
        messages.insert(0, opening.SerializeToString())
    reply = served.call(lambda: list(rpc(iter(messages), timeout=CALL_DEADLINE)))
    assert reply == grpc.StatusCode.INVALID_ARGUMENT
    served.check_seeds()


UNARY = {
    "Info": pb.InfoResponse,
    "Update": pb.UpdateResponse,
    "Delete": pb.InfoResponse,
    "Status": pb.StatusResponse,
    "ListStatuses": pb.ListStatusesResponse,
    "Abort": pb.InfoResponse,
}
STREAMING = {"List": pb.ListContentResponse, "Read": pb.ReadContentResponse}
# Wire-level messages: random bytes, and well-formed fields whose strings are not UTF-8.
raw_strings = st.one_of(
    st.binary(max_size=40), st.sampled_from([NON_UTF8, b"\xc3", b"\xed\xa0\x80"])
)
raw_messages = st.one_of(
    st.binary(max_size=200),
    st.lists(st.tuples(st.integers(1, 8), raw_strings).map(lambda f: _field(*f)), max_size=4).map(
        b"".join
    ),
)


@fuzz_settings
@given(method=st.sampled_from(sorted(UNARY) + sorted(STREAMING)), payload=raw_messages)
def test_raw_requests(served: Served, method: str, payload: bytes) -> None:
    """Any bytes as a request: a reply or a typed error, never grpcio's INTERNAL."""
    if method in STREAMING:
        served.raw(method, payload, STREAMING[method], stream=True)
    else:
        served.raw(method, payload, UNARY[method])
    served.check_seeds()


@fuzz_settings
@given(messages=st.lists(raw_messages, min_size=1, max_size=4))
def test_raw_write_streams(served: Served, messages: list[bytes]) -> None:
    rpc = served.channel.stream_stream(
        "/containerd.services.content.v1.Content/Write",
        request_serializer=None,
        response_deserializer=pb.WriteContentResponse.FromString,
    )
    served.call(lambda: list(rpc(iter(messages), timeout=CALL_DEADLINE)))
    served.check_seeds()


def test_message_over_the_limit_is_resource_exhausted(served: Served) -> None:
    """A request larger than the 64 MiB message limit is refused by gRPC, and nothing else."""
    oversized = pb.WriteContentRequest(action=pb.WRITE, ref="f/big", data=bytes(64 << 20))
    with pytest.raises(grpc.RpcError) as info:
        list(served.stub.Write(iter([oversized]), timeout=CALL_DEADLINE))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    served.check_seeds()
    status = served.call(lambda: served.stub.Status(pb.StatusRequest(ref="f/big"), timeout=5))
    assert status == grpc.StatusCode.NOT_FOUND
