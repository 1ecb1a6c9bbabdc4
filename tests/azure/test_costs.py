"""Requests are money: what the store costs on Azure, counted at the SDK's transport."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

import cargohold
from cargohold import Store
from cargohold.digests import parse_digest
from cargohold.drivers.base import CREATE_ONLY, ObjectInfo
from cargohold.labels import LabelRecord

from .conftest import RequestCounter


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.fixture
def astore(azure_store_url: str) -> Iterator[Store]:
    opened = cargohold.open_store(azure_store_url, part_size=256 * 1024)
    yield opened
    opened.close()


def _ingest(store: Store, data: bytes, labels: dict[str, str] | None = None) -> str:
    with store.writer(f"ref-{_digest(data)}") as writer:
        writer.write(data)
        writer.commit(len(data), _digest(data), labels)
    return _digest(data)


@pytest.mark.parametrize(
    "labels",
    [
        None,
        {"a": "1"},
        {"k": "v" * 4000},
        {"x": "y" * 2000}
        | {f"containerd.io/gc.ref.content.l.{i}": "sha256:" + "0" * 64 for i in range(40)},
    ],
)
def test_info_is_at_most_two_requests(
    astore: Store, request_counter: RequestCounter, labels: dict[str, str] | None
) -> None:
    digest = _ingest(astore, b"info-cost" * 100, labels)
    request_counter.reset()
    info = astore.info(digest)
    assert request_counter.total <= 2, request_counter.queries
    assert dict(info.labels) == (labels or {})


def test_info_of_missing_blob_is_one_request(
    astore: Store, request_counter: RequestCounter
) -> None:
    request_counter.reset()
    with pytest.raises(cargohold.NotFoundError):
        astore.info(_digest(b"never written"))
    assert request_counter.total == 1


def _seed(store: Store, data: bytes, labels: dict[str, str]) -> str:
    """A committed, labelled blob written the way a commit writes it, in 2 requests not ~10."""
    digest = _digest(data)
    key = store.layout.blob_key(parse_digest(digest))
    etag = store.driver.put(key, data, precondition=CREATE_ONLY)
    now = datetime.now(UTC)
    store.labels.write(ObjectInfo(key, len(data), now, etag), LabelRecord(now, now, labels))
    return digest


def test_walk_of_2500_labelled_blobs_uses_list_requests_only(
    astore: Store, request_counter: RequestCounter
) -> None:
    blobs = [f"blob-{i}".encode() for i in range(2500)]
    with ThreadPoolExecutor(8) as pool:
        digests = list(
            pool.map(lambda b: _seed(astore, b, {"containerd.io/gc.root": b.decode()}), blobs)
        )
    digests.append(_ingest(astore, b"one through a writer", {"containerd.io/gc.root": "w"}))
    blobs.append(b"w")
    request_counter.reset()
    walked = {info.digest: dict(info.labels) for info in astore.walk()}
    assert walked == {
        d: {"containerd.io/gc.root": b.decode()} for d, b in zip(digests, blobs, strict=True)
    }
    assert set(request_counter.by_method) == {"GET"}
    assert all("comp=list" in q for q in request_counter.queries), request_counter.queries[:5]
    # 5,000 names per page: one page, maybe two if the service pages sooner.
    assert request_counter.total <= 2
    request_counter.reset()
    assert [i.digest for i in astore.walk('labels."containerd.io/gc.root"==blob-7')] == [digests[7]]
    assert request_counter.total <= 2


def test_ingest_uses_one_block_per_part(astore: Store, request_counter: RequestCounter) -> None:
    part = astore.part_size
    data = hashlib.shake_256(b"parts").digest(10 * part + 123)
    request_counter.reset()
    _ingest(astore, data)
    staged = [q for q in request_counter.queries if "comp=block&" in q or q.endswith("comp=block")]
    assert len(staged) == 11
    commits = [q for q in request_counter.queries if "comp=blocklist" in q]
    assert len(commits) == 1
    # Lock, state, commit bookkeeping: a small constant on top of the part uploads.
    assert request_counter.total - len(staged) <= 12, request_counter.queries
