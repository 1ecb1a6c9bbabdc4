"""Digests named by containerd's refs: read as upload hints, through a real gRPC channel."""

from __future__ import annotations

import hashlib

import grpc
import pytest

from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.refs import digest_hint

from .conftest import Served
from .test_rpcs import code_of, sha, write_blob

HEX = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize(
    ("ref", "hint"),
    [
        (f"k8s.io/12/layer-sha256:{HEX}", f"sha256:{HEX}"),
        (f"default/3/manifest-sha256:{HEX}", f"sha256:{HEX}"),
        (f"default/3/index-docker.io/library/alpine:3@sha256:{HEX}", f"sha256:{HEX}"),
        (f"default/4/tar-blobs/sha256/{HEX}", f"sha256:{HEX}"),
        (f"config-sha256:{HEX}", f"sha256:{HEX}"),
        ("default/5/tar-index.json", ""),
        ("default/6/my-upload", ""),
        (f"default/7/layer-sha256:{HEX.upper()}", ""),
        (f"default/8/layer-sha256:{HEX}0", ""),
        (f"default/9/layer-sha512:{HEX}{HEX}", ""),
    ],
)
def test_digest_hint_reads_containerds_ref_forms(ref: str, hint: str) -> None:
    assert digest_hint(ref) == hint


def test_a_ref_naming_the_digest_uploads_without_a_copy(served: Served) -> None:
    data = bytes(range(256)) * ((served.store.part_size + 4096) // 256)
    served.store.driver.reset_calls()
    write_blob(served, f"default/1/layer-{sha(data)}", data)
    assert served.store.driver.calls.get("copy", 0) == 0, served.store.driver.calls
    got = b"".join(r.data for r in served.stub.Read(pb.ReadContentRequest(digest=sha(data))))
    assert got == data


def test_a_ref_naming_another_digest_fails_once_then_works(served: Served) -> None:
    data = bytes(range(251)) * ((served.store.part_size + 4096) // 251)
    ref = f"default/2/layer-{sha(b'not these bytes')}"
    assert code_of(lambda: write_blob(served, ref, data)) == grpc.StatusCode.FAILED_PRECONDITION
    assert served.stub.Status(pb.StatusRequest(ref=ref)).status.offset == 0
    assert write_blob(served, ref, data) == sha(data)
    assert served.server.holdings.held() == {sha(data)}
