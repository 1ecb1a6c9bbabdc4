"""Faults: a writer killed mid-upload, and a server that fails or drops some requests.

The invariant checked every time: every key under ``blobs/`` holds bytes that hash to the
digest in its name, and every committed blob reads back whole.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import cargohold
from cargohold import Descriptor, Store
from cargohold.drivers.base import MiB
from cargohold.drivers.s3 import S3Driver

from .._driver_helpers import kill_writer_child, resume_killed_writer
from ..emulators.moto import S3Endpoint
from .conftest import open_s3
from .faultproxy import FaultPlan, fault_proxy

CHILD = r"""
import hashlib, sys, time
import cargohold
from cargohold import Descriptor
url, ref, size, upto = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = (hashlib.shake_256(b"kill").digest(1 << 20) * (size // (1 << 20) + 1))[:size]
digest = "sha256:" + hashlib.sha256(data).hexdigest()
store = cargohold.open_store(url)
writer = store.writer(ref, Descriptor(digest=digest, size=size))
step = 1 << 20
for offset in range(0, upto, step):
    writer.write(data[offset:min(offset + step, upto)])
print("written", flush=True)
time.sleep(600)
"""


def _data(size: int) -> bytes:
    return (hashlib.shake_256(b"kill").digest(MiB) * (size // MiB + 1))[:size]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def assert_blobs_intact(driver: S3Driver, prefix: str) -> int:
    """Every object under blobs/ (sidecars aside) hashes to its key; return how many there are."""
    count = 0
    for obj in driver.list(f"{prefix}/blobs/"):
        name = obj.key.rsplit("/", 2)
        if name[-1].endswith(".labels"):
            continue
        algorithm, hexdigest = name[-2], name[-1]
        assert hashlib.new(algorithm, driver.get(obj.key)).hexdigest() == hexdigest, obj.key
        count += 1
    return count


@pytest.mark.multiprocess
def test_writer_killed_mid_upload_resumes_elsewhere(s3_url: str, tmp_path: Path) -> None:
    url = s3_url + "&lease_timeout=2&part_size=5242880"
    size, upto, ref = 23 * MiB + 5, 17 * MiB, "killed-writer"
    data = _data(size)
    kill_writer_child(CHILD, tmp_path, url, ref, str(size), str(upto))

    store = cargohold.open_store(url)
    try:
        offset = resume_killed_writer(store, ref, data)
        assert 0 <= offset <= upto
        driver, prefix = open_s3(s3_url)
        try:
            # A session the dead writer started but never recorded may be left behind (the
            # bucket's lifecycle rule aborts it); it never shows under the digest key.
            assert len(list(driver.list_uploads(prefix + "/"))) <= 1
            assert assert_blobs_intact(driver, prefix) == 1
        finally:
            driver.close()
    finally:
        store.close()


def _ingest(store: Store, data: bytes, *, known: bool, labels: dict[str, str] | None) -> str:
    digest = _digest(data)
    desc = Descriptor(digest=digest, size=len(data)) if known else None
    with store.writer(f"ref-{digest}-{known}", desc) as writer:
        for offset in range(0, len(data), 3 * MiB):
            writer.write(data[offset : offset + 3 * MiB])
        writer.commit(len(data), digest, labels)
    return digest


def test_faulty_server_never_exposes_partial_blobs(
    moto_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    plan = FaultPlan(slow_down=0.08, internal=0.06, reset=0.06, seed=11)
    sizes = [0, 1, 1000, 5 * MiB, 5 * MiB + 1, 12 * MiB + 3]
    with fault_proxy(moto_endpoint.url, plan) as proxy_url:
        faulty = S3Endpoint(proxy_url, owned=False, reset_path=None)
        url = faulty.store_url(s3_bucket, max_attempts="12")
        store = cargohold.open_store(url, part_size=5 * MiB, concurrency=4)
        committed = []
        try:
            for index, size in enumerate(sizes):
                data = hashlib.shake_256(index.to_bytes(2, "big")).digest(size) if size else b""
                labels = {"index": str(index)} if index % 2 else None
                committed.append(_ingest(store, data, known=index % 3 != 2, labels=labels))
            assert {i.digest for i in store.walk()} == set(committed)
            assert store.list_statuses() == []
        finally:
            store.close()
    assert plan.counts["503"] + plan.counts["500"] + plan.counts["reset"] > 5, plan.counts

    direct, prefix = open_s3(moto_endpoint.store_url(s3_bucket))
    try:
        assert assert_blobs_intact(direct, prefix) == len(set(committed))
        assert list(direct.list_uploads(prefix + "/")) == []
    finally:
        direct.close()
