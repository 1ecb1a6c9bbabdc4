"""Upload sessions: parts as temporary objects joined by compose."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from cargohold.drivers.base import CREATE_ONLY, Part
from cargohold.drivers.gcs import GCSDriver, GCSOptions
from cargohold.errors import AlreadyExistsError, FailedPreconditionError, NotFoundError


def _upload(driver: GCSDriver, key: str, chunks: list[bytes]) -> tuple[str, list[Part]]:
    upload_id = driver.start_upload(key)
    parts = [driver.upload_part(key, upload_id, n, c) for n, c in enumerate(chunks, 1)]
    return upload_id, parts


def test_session_life_cycle(gcs_driver: GCSDriver) -> None:
    upload_id, parts = _upload(gcs_driver, "s/blobs/x", [b"aa", b"bbb", b"c"])
    assert gcs_driver.list_parts("s/blobs/x", upload_id) == parts
    [session] = list(gcs_driver.list_uploads("s/"))
    assert (session.key, session.upload_id) == ("s/blobs/x", upload_id)
    assert session.initiated is not None
    assert session.initiated > datetime.now(UTC) - timedelta(minutes=5)
    etag = gcs_driver.complete_upload("s/blobs/x", upload_id, parts, precondition=CREATE_ONLY)
    assert gcs_driver.get("s/blobs/x") == b"aabbbc"
    assert gcs_driver.head("s/blobs/x").etag == etag
    assert list(gcs_driver.list_uploads("s/")) == []
    assert [o.key for o in gcs_driver.list("")] == ["s/blobs/x"]
    with pytest.raises(NotFoundError):
        gcs_driver.list_parts("s/blobs/x", upload_id)


def test_replaced_part_is_replaced(gcs_driver: GCSDriver) -> None:
    upload_id, parts = _upload(gcs_driver, "k", [b"old"])
    newer = gcs_driver.upload_part("k", upload_id, 1, b"new!")
    assert newer.etag != parts[0].etag
    assert gcs_driver.list_parts("k", upload_id) == [newer]
    with pytest.raises(FailedPreconditionError):
        gcs_driver.complete_upload("k", upload_id, parts)
    gcs_driver.complete_upload("k", upload_id, [newer])
    assert gcs_driver.get("k") == b"new!"


def test_missing_part_fails(gcs_driver: GCSDriver) -> None:
    upload_id, parts = _upload(gcs_driver, "k", [b"a"])
    with pytest.raises(FailedPreconditionError):
        gcs_driver.complete_upload("k", upload_id, [*parts, Part(2, 1, parts[0].etag)])
    with pytest.raises(NotFoundError):
        gcs_driver.complete_upload("k", "no-such-upload", parts)


def test_complete_subset_in_order(gcs_driver: GCSDriver) -> None:
    upload_id, parts = _upload(gcs_driver, "k", [b"1", b"2", b"3"])
    gcs_driver.complete_upload("k", upload_id, [parts[0], parts[2]])
    assert gcs_driver.get("k") == b"13"


def test_zero_parts_make_an_empty_object(gcs_driver: GCSDriver) -> None:
    upload_id = gcs_driver.start_upload("k")
    gcs_driver.complete_upload("k", upload_id, [], precondition=CREATE_ONLY)
    assert gcs_driver.get("k") == b""
    upload_id = gcs_driver.start_upload("k")
    with pytest.raises(AlreadyExistsError):
        gcs_driver.complete_upload("k", upload_id, [], precondition=CREATE_ONLY)


def test_compose_more_than_32_parts(gcs_driver: GCSDriver) -> None:
    chunks = [f"{n:04d}".encode() for n in range(1, 1100)]  # two rounds of 32-way composes
    upload_id, parts = _upload(gcs_driver, "big", chunks)
    assert len(gcs_driver.list_parts("big", upload_id)) == len(chunks)
    gcs_driver.complete_upload("big", upload_id, parts, precondition=CREATE_ONLY)
    assert gcs_driver.get("big") == b"".join(chunks)
    assert list(gcs_driver.list_uploads("")) == []
    assert [o.key for o in gcs_driver.list("")] == ["big"]


def test_create_only_complete_when_key_exists(gcs_driver: GCSDriver) -> None:
    gcs_driver.put("k", b"first")
    upload_id, parts = _upload(gcs_driver, "k", [b"a", b"b"])
    with pytest.raises(AlreadyExistsError):
        gcs_driver.complete_upload("k", upload_id, parts, precondition=CREATE_ONLY)
    assert gcs_driver.get("k") == b"first"
    gcs_driver.abort_upload("k", upload_id)


def test_abort(gcs_driver: GCSDriver) -> None:
    upload_id, _ = _upload(gcs_driver, "k", [b"a", b"b"])
    gcs_driver.abort_upload("k", upload_id)
    gcs_driver.abort_upload("k", upload_id)  # unknown: not an error
    assert list(gcs_driver.list_uploads("")) == []
    with pytest.raises(NotFoundError):
        gcs_driver.list_parts("k", upload_id)
    assert list(gcs_driver.client.list_blobs(gcs_driver.bucket_name)) == []


def test_list_uploads_by_prefix(gcs_driver: GCSDriver) -> None:
    a = gcs_driver.start_upload("x/ingest/1/data")
    b = gcs_driver.start_upload("x/blobs/sha256/ff")
    gcs_driver.start_upload("y/blobs/sha256/ff")
    found = {(u.key, u.upload_id) for u in gcs_driver.list_uploads("x/")}
    assert found == {("x/ingest/1/data", a), ("x/blobs/sha256/ff", b)}


def test_concurrent_create_only_commits_one_winner(gcs_driver: GCSDriver) -> None:
    """N committers race on one key; the claim (an enforced create-only upload) picks one."""
    sessions = [_upload(gcs_driver, "race", [b"same", b"bytes"]) for _ in range(6)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(sessions))

    def commit(upload_id: str, parts: list[Part]) -> None:
        barrier.wait()
        try:
            gcs_driver.complete_upload("race", upload_id, parts, precondition=CREATE_ONLY)
            outcomes.append("ok")
        except AlreadyExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=commit, args=s) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["exists"] * 5 + ["ok"]
    assert gcs_driver.get("race") == b"samebytes"


def test_stale_claim_is_taken_over(gcs_bucket: str, gcs_endpoint: str) -> None:
    driver = GCSDriver(gcs_bucket, GCSOptions(endpoint_url=gcs_endpoint, claim_timeout=1))
    try:
        driver.put("k.~parts/claim", b"", precondition=CREATE_ONLY)  # left by a dead committer
        upload_id, parts = _upload(driver, "k", [b"a"])
        driver.complete_upload("k", upload_id, parts, precondition=CREATE_ONLY)
        assert driver.get("k") == b"a"
        assert list(driver.client.list_blobs(gcs_bucket)) != []
        assert [b.name for b in driver.client.list_blobs(gcs_bucket)] == ["k"]
    finally:
        driver.close()
