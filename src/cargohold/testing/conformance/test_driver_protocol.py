"""The driver protocol (drivers/base.py), checked the same way on every driver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cargohold import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    Store,
)
from cargohold.drivers.base import CREATE_ONLY, Driver, IfMatch, Part

from ..helpers import random_bytes


@pytest.fixture
def raw(cstore: Store) -> Iterator[tuple[Driver, str]]:
    """The unwrapped driver and a folder of its own; what a test leaves there is removed."""
    root = f"{cstore.prefix}/proto" if cstore.prefix else "proto"
    driver = cstore.driver.inner
    yield driver, root
    for upload in list(driver.list_uploads(f"{root}/")):
        driver.abort_upload(upload.key, upload.upload_id)
    for info in list(driver.list(f"{root}/")):
        driver.delete(info.key)


def test_put_get_head_list_delete(raw: tuple[Driver, str]) -> None:
    driver, root = raw
    etag = driver.put(f"{root}/a", b"alpha")
    driver.put(f"{root}/b/c", b"")
    assert driver.get(f"{root}/a") == b"alpha"
    assert driver.get(f"{root}/b/c") == b""
    assert driver.get_range(f"{root}/a", 1, 3) == b"lph"
    assert driver.get_range(f"{root}/a", 3, 100) == b"ha"
    info = driver.head(f"{root}/a")
    assert (info.key, info.size, info.etag) == (f"{root}/a", 5, etag)
    assert info.modified.tzinfo is not None
    assert [o.key for o in driver.list(f"{root}/")] == [f"{root}/a", f"{root}/b/c"]
    assert [o.key for o in driver.list(f"{root}/b")] == [f"{root}/b/c"]
    driver.delete(f"{root}/a")
    driver.delete(f"{root}/a")  # deleting a missing object is not an error
    for call in (driver.get, driver.head):
        with pytest.raises(NotFoundError):
            call(f"{root}/a")
    with pytest.raises(NotFoundError):
        driver.get_range(f"{root}/a", 0, 1)


def test_create_only_and_compare_and_swap(raw: tuple[Driver, str]) -> None:
    driver, root = raw
    key = f"{root}/cas"
    first = driver.put(key, b"one", precondition=CREATE_ONLY)
    with pytest.raises(AlreadyExistsError):
        driver.put(key, b"two", precondition=CREATE_ONLY)
    assert driver.get(key) == b"one"
    second = driver.put(key, b"two", precondition=IfMatch(first))
    assert second != first
    with pytest.raises(FailedPreconditionError):
        driver.put(key, b"three", precondition=IfMatch(first))
    assert driver.get(key) == b"two"
    with pytest.raises(FailedPreconditionError):
        driver.delete(key, precondition=IfMatch(first))
    driver.delete(key, precondition=IfMatch(second))
    with pytest.raises(NotFoundError):
        driver.head(key)


def test_copy(raw: tuple[Driver, str]) -> None:
    driver, root = raw
    driver.put(f"{root}/src", b"copied bytes")
    driver.copy(f"{root}/src", f"{root}/dst", precondition=CREATE_ONLY)
    assert driver.get(f"{root}/dst") == b"copied bytes"
    with pytest.raises(AlreadyExistsError):
        driver.copy(f"{root}/src", f"{root}/dst", precondition=CREATE_ONLY)
    with pytest.raises(NotFoundError):
        driver.copy(f"{root}/missing", f"{root}/dst2")


def test_upload_session_round_trip(raw: tuple[Driver, str], cstore: Store) -> None:
    driver, root = raw
    size = cstore.part_size
    key = f"{root}/multi"
    upload = driver.start_upload(key)
    chunks = [random_bytes(size, seed=1), random_bytes(size, seed=2), b"tail"]
    parts = [driver.upload_part(key, upload, n + 1, c) for n, c in enumerate(chunks)]
    listed = driver.list_parts(key, upload)
    assert [(p.number, p.size, p.etag) for p in listed] == [
        (p.number, p.size, p.etag) for p in parts
    ]
    assert any(u.upload_id == upload for u in driver.list_uploads(root))
    with pytest.raises(NotFoundError):
        driver.head(key)  # nothing is visible before completion
    driver.complete_upload(key, upload, parts, precondition=CREATE_ONLY)
    assert driver.get(key) == b"".join(chunks)
    assert not any(u.upload_id == upload for u in driver.list_uploads(root))


def test_complete_refuses_replaced_or_missing_parts(raw: tuple[Driver, str], cstore: Store) -> None:
    driver, root = raw
    size = cstore.part_size
    key = f"{root}/fenced"
    upload = driver.start_upload(key)
    first = driver.upload_part(key, upload, 1, random_bytes(size, seed=3))
    second = driver.upload_part(key, upload, 2, b"end")
    stale = random_bytes(size, seed=4)
    driver.upload_part(key, upload, 1, stale)  # a stale writer replaces part 1
    # Completing with the etags we recorded either fails or assembles exactly our bytes
    # (Azure keeps both blocks apart); it never assembles the stale writer's bytes.
    try:
        driver.complete_upload(key, upload, [first, second])
    except FailedPreconditionError:
        pass
    else:
        assert driver.get(key) == random_bytes(size, seed=3) + b"end"
        return
    with pytest.raises((FailedPreconditionError, NotFoundError)):
        driver.complete_upload(key, upload, [Part(7, 3, "nope")])
    with pytest.raises(NotFoundError):
        driver.head(key)
    driver.abort_upload(key, upload)
    driver.abort_upload(key, upload)  # aborting twice is not an error


def test_create_only_completion(raw: tuple[Driver, str]) -> None:
    driver, root = raw
    key = f"{root}/taken"
    driver.put(key, b"first")
    upload = driver.start_upload(key)
    part = driver.upload_part(key, upload, 1, b"second")
    with pytest.raises(AlreadyExistsError):
        driver.complete_upload(key, upload, [part], precondition=CREATE_ONLY)
    assert driver.get(key) == b"first"


def test_empty_completion_is_a_zero_byte_object(raw: tuple[Driver, str]) -> None:
    driver, root = raw
    key = f"{root}/empty"
    upload = driver.start_upload(key)
    part = driver.upload_part(key, upload, 1, b"")
    driver.complete_upload(key, upload, [part])
    assert driver.get(key) == b""


def test_unknown_session(raw: tuple[Driver, str]) -> None:
    driver, root = raw
    with pytest.raises((NotFoundError, InvalidArgumentError)):
        driver.list_parts(f"{root}/nothing", "no-such-upload")
