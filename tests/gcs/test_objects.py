"""Driver-level tests of object calls against fake-gcs-server."""

from __future__ import annotations

import pytest

from cargohold.drivers.base import CREATE_ONLY, IfMatch
from cargohold.drivers.gcs import GCSDriver
from cargohold.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)

from .._driver_helpers import (
    check_create_only_put,
    check_get_range_edges,
    check_missing_objects,
    check_put_if_match,
)


def test_put_get_head_round_trip_metadata(gcs_driver: GCSDriver) -> None:
    meta = {"l_0": "a%2Fb", "created": "2024-01-01T00:00:00Z"}
    etag = gcs_driver.put("s/blobs/sha256/aa", b"hello", precondition=CREATE_ONLY, metadata=meta)
    info = gcs_driver.head("s/blobs/sha256/aa")
    assert (info.size, info.etag, info.metadata) == (5, etag, meta)
    assert info.modified.tzinfo is not None
    assert gcs_driver.get("s/blobs/sha256/aa") == b"hello"


def test_create_only_put_is_enforced(gcs_driver: GCSDriver) -> None:
    check_create_only_put(gcs_driver)


def test_put_if_match(gcs_driver: GCSDriver) -> None:
    check_put_if_match(gcs_driver)
    with pytest.raises(FailedPreconditionError):
        gcs_driver.put("k", b"three", precondition=IfMatch("not-an-etag"))


def test_missing_objects(gcs_driver: GCSDriver) -> None:
    check_missing_objects(gcs_driver)
    gcs_driver.delete("nope")  # not an error


def test_get_range(gcs_driver: GCSDriver) -> None:
    check_get_range_edges(gcs_driver)
    with pytest.raises(InvalidArgumentError):
        gcs_driver.get_range("r", -1, 2)


def test_list_pages_and_carries_metadata(gcs_driver: GCSDriver) -> None:
    for i in range(5):
        gcs_driver.put(f"p/{i:04d}", b"x" * i, metadata={"n": str(i)})
    gcs_driver.put("q/other", b"")
    found = list(gcs_driver.list("p/", metadata=True))
    assert [o.key for o in found] == [f"p/{i:04d}" for i in range(5)]
    assert [o.size for o in found] == list(range(5))
    assert [o.metadata for o in found] == [{"n": str(i)} for i in range(5)]
    assert all(o.metadata is None for o in gcs_driver.list("p/"))
    assert [o.etag for o in found] == [gcs_driver.head(o.key).etag for o in found]


def test_list_hides_upload_sessions(gcs_driver: GCSDriver) -> None:
    gcs_driver.put("b/blob", b"x")
    upload_id = gcs_driver.start_upload("b/other")
    gcs_driver.upload_part("b/other", upload_id, 1, b"part")
    assert [o.key for o in gcs_driver.list("b/")] == ["b/blob"]


def test_delete_if_match(gcs_driver: GCSDriver) -> None:
    etag = gcs_driver.put("k", b"x")
    gcs_driver.delete("k", precondition=IfMatch(etag))
    with pytest.raises(NotFoundError):
        gcs_driver.head("k")


def test_copy(gcs_driver: GCSDriver) -> None:
    gcs_driver.put("src", b"payload")
    etag = gcs_driver.copy("src", "dst", precondition=CREATE_ONLY)
    assert gcs_driver.get("dst") == b"payload"
    assert gcs_driver.head("dst").etag == etag
    with pytest.raises(AlreadyExistsError):
        gcs_driver.copy("src", "dst", precondition=CREATE_ONLY)
    gcs_driver.put("src", b"new")
    gcs_driver.copy("src", "dst")
    assert gcs_driver.get("dst") == b"new"
    with pytest.raises(NotFoundError):
        gcs_driver.copy("missing", "dst2")
    assert [o.key for o in gcs_driver.list("")] == ["dst", "src"]


def test_set_metadata_replaces(gcs_driver: GCSDriver) -> None:
    etag = gcs_driver.put("k", b"bytes", metadata={"a": "1", "b": "2"})
    new = gcs_driver.set_metadata("k", {"c": "3"}, precondition=IfMatch(etag))
    info = gcs_driver.head("k")
    assert info.metadata == {"c": "3"}
    assert info.etag == new
    assert gcs_driver.get("k") == b"bytes"
    gcs_driver.set_metadata("k", {})
    assert gcs_driver.head("k").metadata == {}
    with pytest.raises(NotFoundError):
        gcs_driver.set_metadata("missing", {"a": "b"})


def test_limits(gcs_driver: GCSDriver) -> None:
    limits = gcs_driver.limits
    assert limits.metadata_bytes == 8192
    assert limits.metadata_mutable and limits.metadata_in_listing
    assert limits.default_part_size == 8 * 1024 * 1024
    assert limits.min_part_size == 1
