"""The S3 driver against a moto server: every protocol method and its errors."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

import cargohold
from cargohold.drivers.base import CREATE_ONLY, IfMatch, MiB, Part
from cargohold.drivers.s3 import S3Driver
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
from .conftest import open_s3


def test_put_get_head_roundtrip(s3_driver: S3Driver) -> None:
    etag = s3_driver.put("a/b", b"hello", metadata={"k_1": "v 1"})
    assert s3_driver.get("a/b") == b"hello"
    info = s3_driver.head("a/b")
    assert (info.key, info.size, info.etag) == ("a/b", 5, etag)
    assert info.metadata == {"k_1": "v 1"}
    assert info.modified.tzinfo is not None


def test_missing_objects_are_not_found(s3_driver: S3Driver) -> None:
    check_missing_objects(s3_driver)
    with pytest.raises(NotFoundError):
        s3_driver.copy("nope", "dst")


def test_get_range_edges(s3_driver: S3Driver) -> None:
    check_get_range_edges(s3_driver)


def test_create_only_put(s3_driver: S3Driver) -> None:
    check_create_only_put(s3_driver)


def test_if_match_put(s3_driver: S3Driver) -> None:
    check_put_if_match(s3_driver)


def test_delete(s3_driver: S3Driver) -> None:
    etag = s3_driver.put("k", b"one")
    s3_driver.put("k2", b"x")
    with pytest.raises(FailedPreconditionError):
        s3_driver.delete("k", precondition=IfMatch('"0123"'))
    s3_driver.delete("k", precondition=IfMatch(etag))
    with pytest.raises(NotFoundError):
        s3_driver.head("k")
    s3_driver.delete("k")  # missing is fine
    s3_driver.delete("k", precondition=IfMatch(etag))  # missing is fine even with if_match
    s3_driver.delete("k2")
    assert list(s3_driver.list("")) == []


def test_list_pages_past_1000_keys(s3_driver: S3Driver) -> None:
    keys = [f"p/{i:05d}" for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3_driver.put(k, b"x"), keys))
    s3_driver.put("q/other", b"y")
    listed = list(s3_driver.list("p/"))
    assert [o.key for o in listed] == keys
    assert all(o.size == 1 and o.metadata is None for o in listed)


def test_upload_session(s3_driver: S3Driver) -> None:
    first, second = os.urandom(5 * MiB), os.urandom(1000)
    upload_id = s3_driver.start_upload("big")
    assert [u.key for u in s3_driver.list_uploads("bi")] == ["big"]
    p1 = s3_driver.upload_part("big", upload_id, 1, first)
    p2 = s3_driver.upload_part("big", upload_id, 2, second)
    assert s3_driver.list_parts("big", upload_id) == [p1, p2]
    with pytest.raises(FailedPreconditionError):
        s3_driver.complete_upload("big", upload_id, [p1, Part(2, 1000, '"bad"')])
    s3_driver.complete_upload("big", upload_id, [p1, p2], precondition=CREATE_ONLY)
    assert s3_driver.get("big") == first + second
    assert list(s3_driver.list_uploads("")) == []
    with pytest.raises(NotFoundError):
        s3_driver.list_parts("big", upload_id)


def test_complete_create_only_on_taken_key(s3_driver: S3Driver) -> None:
    s3_driver.put("taken", b"first")
    upload_id = s3_driver.start_upload("taken")
    part = s3_driver.upload_part("taken", upload_id, 1, b"second")
    with pytest.raises(AlreadyExistsError):
        s3_driver.complete_upload("taken", upload_id, [part], precondition=CREATE_ONLY)
    assert s3_driver.get("taken") == b"first"
    s3_driver.abort_upload("taken", upload_id)
    s3_driver.abort_upload("taken", upload_id)  # unknown session: not an error
    assert list(s3_driver.list_uploads("")) == []


def test_complete_with_no_parts_makes_empty_object(s3_driver: S3Driver) -> None:
    upload_id = s3_driver.start_upload("zero")
    s3_driver.complete_upload("zero", upload_id, [], precondition=CREATE_ONLY)
    assert s3_driver.head("zero").size == 0


def test_copy_create_only_beyond_one_part(s3_driver: S3Driver) -> None:
    data = os.urandom(12 * MiB + 7)
    s3_driver.put("src", data)
    s3_driver.copy_part_size = 5 * MiB  # force UploadPartCopy into several parts
    s3_driver.copy("src", "dst", precondition=CREATE_ONLY)
    assert s3_driver.get("dst") == data
    with pytest.raises(AlreadyExistsError):
        s3_driver.copy("src", "dst", precondition=CREATE_ONLY)
    assert list(s3_driver.list_uploads("")) == []  # the losing copy left no session behind
    s3_driver.put("empty", b"")
    s3_driver.copy("empty", "empty2", precondition=CREATE_ONLY)
    assert s3_driver.get("empty2") == b""


def test_bad_urls_are_invalid_arguments(s3_url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="bogus"):
        open_s3(s3_url, bogus="1")
    with pytest.raises(InvalidArgumentError):
        open_s3(s3_url, sse="rot13")
    with pytest.raises(InvalidArgumentError):
        open_s3(s3_url, sse_kms_key_id="k")
    with pytest.raises(InvalidArgumentError):
        open_s3(s3_url, retry_mode="legacy")
    with pytest.raises(InvalidArgumentError):
        open_s3(s3_url, max_attempts="zero")
    with pytest.raises(InvalidArgumentError):
        open_s3("s3:///prefix")
    with pytest.raises(InvalidArgumentError, match="concurrency"):
        open_s3(s3_url, concurrency="0")
    with pytest.raises(InvalidArgumentError, match="max_connections"):
        open_s3(s3_url, max_connections="many")


def test_the_store_concurrency_sizes_the_pool(s3_url: str) -> None:
    with cargohold.open_store(s3_url, concurrency=12) as store:
        driver = store.driver.inner
        assert isinstance(driver, S3Driver)
        assert driver.client.meta.config.max_pool_connections == 48
        assert store.concurrency == 12


def _concurrency_and_pool(s3_url: str, **options: str) -> tuple[int, int]:
    """The default concurrency and the connection pool size of a driver opened with ``options``."""
    driver, _ = open_s3(s3_url, **options)
    try:
        return driver.limits.default_concurrency, driver.client.meta.config.max_pool_connections
    finally:
        driver.close()


def test_concurrency_sets_the_default_and_the_pool(s3_url: str) -> None:
    assert _concurrency_and_pool(s3_url, concurrency="12") == (12, 48)
    with pytest.warns(DeprecationWarning, match="max_connections is deprecated; use concurrency"):
        assert _concurrency_and_pool(s3_url, max_connections="2") == (2, 32)


def test_sse_and_storage_class_applied(s3_url: str) -> None:
    driver, _ = open_s3(s3_url, sse="AES256", storage_class="STANDARD_IA")
    try:
        driver.put("small", b"x")
        upload_id = driver.start_upload("multi")
        driver.complete_upload(
            "multi", upload_id, [driver.upload_part("multi", upload_id, 1, b"y")]
        )
        for key in ("small", "multi"):
            resp = driver.client.head_object(Bucket=driver.bucket, Key=key)
            assert resp.get("ServerSideEncryption") == "AES256"
            assert resp.get("StorageClass") == "STANDARD_IA"
    finally:
        driver.close()
