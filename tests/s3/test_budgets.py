"""Request budgets of store operations on S3, counted with botocore's event hooks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import cargohold
from cargohold import Descriptor, Store
from cargohold.drivers.base import CREATE_ONLY, MiB
from cargohold.drivers.s3 import S3Driver

from .recorder import RequestRecorder


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def s3_store(s3_url: str) -> Iterator[Store]:
    store = cargohold.open_store(s3_url, part_size=8 * MiB, concurrency=4)
    try:
        yield store
    finally:
        store.close()


def _record(store: Store) -> RequestRecorder:
    driver = store.driver.inner  # the S3 driver the store's wrapper holds
    assert isinstance(driver, S3Driver)
    return RequestRecorder().attach(driver.client)


def _ingest(store: Store, data: bytes, labels: dict[str, str] | None = None) -> str:
    digest = _digest(data)
    with store.writer(f"ref-{digest}", Descriptor(digest=digest, size=len(data))) as writer:
        writer.write(data)
        writer.commit(len(data), digest, labels)
    return digest


def test_info_takes_at_most_two_requests(s3_store: Store) -> None:
    plain = _ingest(s3_store, b"plain")
    labeled = _ingest(s3_store, b"labeled", {"a": "b"})
    recorder = _record(s3_store)
    for digest in (plain, labeled):
        recorder.clear()
        s3_store.info(digest)
        assert recorder.count() <= 2, recorder.operations()
    assert s3_store.info(labeled).labels == {"a": "b"}


def test_walk_of_2500_unlabeled_blobs_is_three_list_requests(s3_store: Store) -> None:
    blobs = [f"blob {i}".encode() for i in range(2500)]
    # The blobs are laid out directly at their digest keys: building them through writers
    # would take minutes on moto and is not what this test measures.
    prefix = s3_store.prefix + "/" if s3_store.prefix else ""

    def put(data: bytes) -> None:
        key = f"{prefix}blobs/sha256/{hashlib.sha256(data).hexdigest()}"
        s3_store.driver.put(key, data, precondition=CREATE_ONLY)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, blobs))
    recorder = _record(s3_store)
    found = {info.digest for info in s3_store.walk()}
    assert found == {_digest(b) for b in blobs}
    assert recorder.operations() == ["ListObjectsV2"] * 3


def test_walk_fetches_only_labeled_blobs_labels(s3_store: Store) -> None:
    for i in range(20):
        _ingest(s3_store, f"blob {i}".encode(), {"n": str(i)} if i % 5 == 0 else None)
    recorder = _record(s3_store)
    infos = list(s3_store.walk())
    assert len(infos) == 20
    per_blob = [op for op in recorder.operations() if op != "ListObjectsV2"]
    assert len(per_blob) <= 4, recorder.operations()


def test_64mib_ingest_with_8mib_parts(s3_store: Store) -> None:
    data = hashlib.shake_256(b"64").digest(MiB) * 64
    recorder = _record(s3_store)
    _ingest(s3_store, data)
    ops = recorder.operations()
    assert recorder.count("UploadPart") <= 8, ops
    # The constant, counted: HEAD blob, lease PUT, state GET, state PUT (start),
    # CreateMultipartUpload, state PUT recording the session, lease renewal PUT at commit,
    # HEAD blob at commit, CompleteMultipartUpload, state DELETE, lease DELETE = 11, plus at
    # most one checkpoint PUT on a slow server; LocalStack lacks DeleteObject If-Match, so its
    # lease release is HEAD + DELETE (one more).
    assert len(ops) - recorder.count("UploadPart") <= 13, " ".join(ops)
    assert "UploadPartCopy" not in ops and "CopyObject" not in ops
    with s3_store.reader_at(_digest(data)) as reader:
        assert hashlib.sha256(reader.read_at(0, len(data))).hexdigest() == _digest(data)[7:]
