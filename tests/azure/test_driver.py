"""The Azure driver against Azurite: every protocol method, preconditions and error mapping."""

from __future__ import annotations

import time

import pytest

from cargohold.drivers.azure import AzureDriver
from cargohold.drivers.azure.driver import from_azure_name, to_azure_name
from cargohold.drivers.base import CREATE_ONLY, IfMatch, MetadataWriter, Part
from cargohold.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)

from .._driver_helpers import check_get_range_edges, check_missing_objects, check_put_if_match


def test_put_get_head_and_create_only(azure_driver: AzureDriver) -> None:
    etag = azure_driver.put("a/b", b"hello", precondition=CREATE_ONLY)
    assert azure_driver.get("a/b") == b"hello"
    info = azure_driver.head("a/b")
    assert (info.key, info.size, info.etag) == ("a/b", 5, etag)
    assert info.modified.tzinfo is not None
    with pytest.raises(AlreadyExistsError):
        azure_driver.put("a/b", b"other", precondition=CREATE_ONLY)
    assert azure_driver.get("a/b") == b"hello"


def test_put_if_match(azure_driver: AzureDriver) -> None:
    check_put_if_match(azure_driver)


def test_missing_objects(azure_driver: AzureDriver) -> None:
    check_missing_objects(azure_driver)
    azure_driver.delete("nope")
    azure_driver.delete("nope", precondition=IfMatch('"0x1"'))


def test_get_range(azure_driver: AzureDriver) -> None:
    check_get_range_edges(azure_driver)
    with pytest.raises(InvalidArgumentError):
        azure_driver.get_range("r", -1, 2)


def test_delete_if_match(azure_driver: AzureDriver) -> None:
    etag = azure_driver.put("d", b"x")
    azure_driver.put("d", b"y")
    with pytest.raises(FailedPreconditionError):
        azure_driver.delete("d", precondition=IfMatch(etag))
    azure_driver.delete("d", precondition=IfMatch(azure_driver.head("d").etag))
    with pytest.raises(NotFoundError):
        azure_driver.head("d")


def test_list_is_ordered_and_prefixed(azure_driver: AzureDriver) -> None:
    for key in ["p/b", "p/a", "p/c/d", "q/a"]:
        azure_driver.put(key, key.encode(), metadata={"k": key.replace("/", "_")})
    listed = list(azure_driver.list("p/"))
    assert [i.key for i in listed] == ["p/a", "p/b", "p/c/d"]
    assert all(i.metadata is None for i in listed)
    with_meta = list(azure_driver.list("p/", metadata=True))
    assert [i.metadata for i in with_meta] == [{"k": "p_a"}, {"k": "p_b"}, {"k": "p_c_d"}]
    assert [i.size for i in with_meta] == [3, 3, 5]
    assert [i.key for i in azure_driver.list("")] == ["p/a", "p/b", "p/c/d", "q/a"]


METADATA = {"abc": "1", "_under": "2", "0digit": "3", "__x": "", "z9_": "a b=c%20"}


def test_metadata_round_trips(azure_driver: AzureDriver) -> None:
    azure_driver.put("m", b"x", metadata=METADATA)
    assert azure_driver.head("m").metadata == METADATA
    assert next(azure_driver.list("m", metadata=True)).metadata == METADATA
    for key in METADATA:
        assert from_azure_name(to_azure_name(key)) == key
        assert not to_azure_name(key)[0].isdigit()


def test_set_metadata(azure_driver: AzureDriver) -> None:
    assert isinstance(azure_driver, MetadataWriter)
    etag = azure_driver.put("s", b"body", metadata={"a": "1"})
    new = azure_driver.set_metadata("s", {"b": "2", "7": "x"}, precondition=IfMatch(etag))
    info = azure_driver.head("s")
    assert info.etag == new != etag
    assert info.metadata == {"b": "2", "7": "x"}
    assert azure_driver.get("s") == b"body"
    with pytest.raises(FailedPreconditionError):
        azure_driver.set_metadata("s", {"c": "3"}, precondition=IfMatch(etag))
    azure_driver.set_metadata("s", {})
    assert azure_driver.head("s").metadata == {}
    with pytest.raises(NotFoundError):
        azure_driver.set_metadata("missing", {"a": "1"})


def test_metadata_too_large_is_invalid(azure_driver: AzureDriver) -> None:
    with pytest.raises(InvalidArgumentError):
        azure_driver.put("big", b"x", metadata={"a": "v" * 9000})


def test_copy(azure_driver: AzureDriver) -> None:
    azure_driver.put("src", b"payload", metadata={"l": "1"})
    etag = azure_driver.copy("src", "dst", precondition=CREATE_ONLY)
    assert azure_driver.head("dst").etag == etag
    assert azure_driver.get("dst") == b"payload"
    assert azure_driver.head("dst").metadata == {"l": "1"}
    with pytest.raises(AlreadyExistsError):
        azure_driver.copy("src", "dst", precondition=CREATE_ONLY)
    with pytest.raises(NotFoundError):
        azure_driver.copy("missing", "dst2", precondition=CREATE_ONLY)
    azure_driver.put("src", b"changed")
    azure_driver.copy("src", "dst")
    assert azure_driver.get("dst") == b"changed"


def test_upload_session(azure_driver: AzureDriver) -> None:
    uid = azure_driver.start_upload("blob")
    assert azure_driver.list_parts("blob", uid) == []
    p1 = azure_driver.upload_part("blob", uid, 1, b"abc")
    p2 = azure_driver.upload_part("blob", uid, 2, b"de")
    assert (p1.number, p1.size, p2.number, p2.size) == (1, 3, 2, 2)
    assert azure_driver.list_parts("blob", uid) == [p1, p2]
    # Staged blocks are invisible until the commit.
    with pytest.raises(NotFoundError):
        azure_driver.head("blob")
    assert list(azure_driver.list("")) == []
    assert [(u.key, u.upload_id) for u in azure_driver.list_uploads("")] == [("blob", uid)]
    etag = azure_driver.complete_upload("blob", uid, [p1, p2], precondition=CREATE_ONLY)
    assert azure_driver.head("blob").etag == etag
    assert azure_driver.get("blob") == b"abcde"
    with pytest.raises(NotFoundError):
        azure_driver.list_parts("blob", uid)
    assert list(azure_driver.list_uploads("")) == []


def test_empty_upload_makes_empty_object(azure_driver: AzureDriver) -> None:
    uid = azure_driver.start_upload("zero")
    azure_driver.complete_upload("zero", uid, [], precondition=CREATE_ONLY)
    assert azure_driver.get("zero") == b""


def test_reuploaded_part_keeps_both_and_lists_newest(azure_driver: AzureDriver) -> None:
    uid = azure_driver.start_upload("k")
    old = azure_driver.upload_part("k", uid, 1, b"old")
    new = azure_driver.upload_part("k", uid, 1, b"newer")
    assert old.etag != new.etag
    assert azure_driver.list_parts("k", uid) == [new]
    # Committing the etag a (stale) writer holds commits exactly its bytes.
    azure_driver.complete_upload("k", uid, [old])
    assert azure_driver.get("k") == b"old"


def test_complete_fails_on_unknown_or_foreign_part(azure_driver: AzureDriver) -> None:
    uid = azure_driver.start_upload("k")
    part = azure_driver.upload_part("k", uid, 1, b"x")
    with pytest.raises(FailedPreconditionError):
        azure_driver.complete_upload("k", uid, [Part(1, 1, "bogus")])
    with pytest.raises(FailedPreconditionError):
        azure_driver.complete_upload("k", uid, [Part(2, 1, part.etag)])
    other = azure_driver.start_upload("k")
    with pytest.raises(FailedPreconditionError):
        azure_driver.complete_upload("k", other, [part])
    forged = part.etag[:-4] + ("0000" if not part.etag.endswith("0000") else "1111")
    with pytest.raises(FailedPreconditionError):
        azure_driver.complete_upload("k", uid, [Part(1, 1, forged)])
    with pytest.raises(NotFoundError):
        azure_driver.head("k")
    azure_driver.complete_upload("k", uid, [part])
    assert azure_driver.get("k") == b"x"


def test_competing_sessions_one_wins(azure_driver: AzureDriver) -> None:
    a = azure_driver.start_upload("digest")
    b = azure_driver.start_upload("digest")
    pa = azure_driver.upload_part("digest", a, 1, b"same")
    pb = azure_driver.upload_part("digest", b, 1, b"same")
    assert {u.upload_id for u in azure_driver.list_uploads("digest")} == {a, b}
    azure_driver.complete_upload("digest", a, [pa], precondition=CREATE_ONLY)
    with pytest.raises(AlreadyExistsError):
        azure_driver.complete_upload("digest", b, [pb], precondition=CREATE_ONLY)
    with pytest.raises(NotFoundError):
        azure_driver.list_parts("digest", b)
    assert azure_driver.get("digest") == b"same"


def test_create_only_complete_on_existing_key(azure_driver: AzureDriver) -> None:
    azure_driver.put("taken", b"first")
    time.sleep(1.05)  # Last-Modified has one-second resolution
    uid = azure_driver.start_upload("taken")
    # A session started after the key was written is alive: it lists no parts yet.
    assert azure_driver.list_parts("taken", uid) == []
    part = azure_driver.upload_part("taken", uid, 1, b"second")
    assert azure_driver.list_parts("taken", uid) == [part]
    with pytest.raises(AlreadyExistsError):
        azure_driver.complete_upload("taken", uid, [part], precondition=CREATE_ONLY)
    assert azure_driver.get("taken") == b"first"


def test_abort_forgets_and_never_fails(azure_driver: AzureDriver) -> None:
    uid = azure_driver.start_upload("k")
    azure_driver.upload_part("k", uid, 1, b"x")
    azure_driver.abort_upload("k", uid)
    azure_driver.abort_upload("k", uid)
    azure_driver.abort_upload("never", azure_driver.start_upload("never"))
    with pytest.raises(NotFoundError):
        azure_driver.head("k")


def test_bad_session_and_part_numbers(azure_driver: AzureDriver) -> None:
    with pytest.raises(NotFoundError):
        azure_driver.list_parts("k", "not-a-session")
    uid = azure_driver.start_upload("k")
    with pytest.raises(InvalidArgumentError):
        azure_driver.upload_part("k", uid, 0, b"x")
    with pytest.raises(InvalidArgumentError):
        azure_driver.upload_part("k", uid, 50_001, b"x")


def test_limits(azure_driver: AzureDriver) -> None:
    limits = azure_driver.limits
    assert limits.min_part_size == 1
    assert limits.max_parts == 50_000
    assert limits.default_part_size == 8 * 1024 * 1024
    assert limits.metadata_bytes == 8 * 1024
    assert limits.metadata_mutable and limits.metadata_in_listing
