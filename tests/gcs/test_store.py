"""The store on GCS: request budgets and a writer killed with SIGKILL."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import cargohold
from cargohold import Info, Store
from cargohold.drivers.base import CREATE_ONLY
from cargohold.drivers.gcs import GCSDriver

from .._driver_helpers import kill_writer_child, resume_killed_writer
from .conftest import Recorder, record

MiB = 1024 * 1024


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _open(url: str, **options: object) -> tuple[Store, Recorder]:
    store = cargohold.open_store(url, **options)
    driver = store.driver.inner  # the GCS driver the store's wrapper holds
    assert isinstance(driver, GCSDriver)
    return store, record(driver)


def test_info_costs_at_most_two_requests(gcs_store_url: str) -> None:
    store, recorder = _open(gcs_store_url)
    try:
        with store.writer("r") as writer:
            writer.write(b"hello")
            writer.commit(5, _digest(b"hello"), {"a": "b", "containerd.io/gc.ref": "x" * 3000})
        recorder.clear()
        info = store.info(_digest(b"hello"))
        assert info.labels == {"a": "b", "containerd.io/gc.ref": "x" * 3000}
        assert len(recorder.requests) <= 2, recorder.requests
    finally:
        store.close()


def test_walk_of_2500_blobs_uses_list_requests_only(gcs_store_url: str) -> None:
    store, recorder = _open(gcs_store_url)
    driver = store.driver
    prefix = store.prefix
    bucket = urlsplit(gcs_store_url).netloc
    payloads = [f"blob {i}".encode() for i in range(2500)]

    def put(data: bytes) -> None:
        key = f"{prefix}/blobs/sha256/{hashlib.sha256(data).hexdigest()}"
        driver.put(key, data, precondition=CREATE_ONLY)

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, payloads))
        labelled = _digest(payloads[7])
        info = store.info(labelled)
        store.update(Info(info.digest, info.size, info.created_at, info.updated_at, {"k": "v"}))
        recorder.clear()
        found = list(store.walk())
        assert len(found) == 2500
        assert {i.digest for i in found} == {_digest(p) for p in payloads}
        assert [i.labels for i in found if i.digest == labelled] == [{"k": "v"}]
        assert [i.digest for i in store.walk("labels.k==v")] == [labelled]
        paths = {(r.method, r.path) for r in recorder.requests}
        assert paths == {("GET", f"/storage/v1/b/{bucket}/o")}
        assert len(recorder.requests) == 3 + 3  # 1,000 per page, two walks
    finally:
        store.close()


CHILD = """
import sys, hashlib, time
import cargohold
url, ref, size, upto = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = (hashlib.shake_256(b"crash").digest(1 << 20) * (size // (1 << 20) + 1))[:size]
digest = "sha256:" + hashlib.sha256(data).hexdigest()
store = cargohold.open_store(url)
writer = store.writer(ref, cargohold.Descriptor(digest=digest, size=size))
for start in range(0, upto, 1 << 18):  # slowly: the writer checkpoints every lease/3 s
    writer.write(data[start : min(start + (1 << 18), upto)])
    time.sleep(0.3)
print("written", flush=True)
sys.stdin.read()  # wait to be killed; never close the writer
"""


@pytest.mark.multiprocess
def test_writer_killed_with_sigkill_resumes(gcs_store_url: str, tmp_path: Path) -> None:
    url = f"{gcs_store_url}?lease_timeout=2&part_size={MiB}"
    size, upto, ref = 5 * MiB + 7, 3 * MiB + 11, "crashing writer"
    data = (hashlib.shake_256(b"crash").digest(MiB) * (size // MiB + 1))[:size]
    kill_writer_child(CHILD, tmp_path, url, ref, str(size), str(upto))

    store = cargohold.open_store(url)
    try:
        offset = resume_killed_writer(store, ref, data)
        assert 0 < offset <= upto  # the flushed parts survived the kill
        assert list(store.driver.list_uploads(store.prefix + "/")) == []
        keys = [o.key for o in store.driver.list(store.prefix + "/")]
        assert keys == [f"{store.prefix}/blobs/sha256/{_digest(data)[7:]}"]
    finally:
        store.close()
