"""Labels and metadata, reading (CONTRACT.md "Labels and metadata", "Reading")."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from cargohold import Info, InvalidArgumentError, NotFoundError, Store

from ..helpers import digest_of, random_bytes


def _with(info: Info, labels: dict[str, str]) -> Info:
    return Info(info.digest, info.size, info.created_at, info.updated_at, labels)


def test_update_fieldpaths(cstore: Store, ingest: Callable[..., str]) -> None:
    digest = ingest(b"labelled", {"a": "1", "b": "2"})
    info = cstore.info(digest)
    assert info.labels == {"a": "1", "b": "2"}
    created = info.created_at
    time.sleep(0.01)
    updated = cstore.update(_with(info, {"c": "3"}))
    assert updated.labels == {"c": "3"}
    assert updated.created_at == created
    assert updated.updated_at > info.updated_at
    updated = cstore.update(_with(info, {"a": "x", "d": "4"}), "labels")
    assert updated.labels == {"a": "x", "d": "4"}
    updated = cstore.update(_with(info, {"a": "y", "e": "5"}), "labels.a", "labels.d")
    assert updated.labels == {"a": "y"}
    updated = cstore.update(_with(info, {"new": "n"}), "labels.new")
    assert updated.labels == {"a": "y", "new": "n"}
    assert cstore.info(digest).labels == {"a": "y", "new": "n"}
    assert cstore.info(digest).created_at == created


def test_update_without_previous_labels_keeps_created_at(
    cstore: Store, ingest: Callable[..., str]
) -> None:
    digest = ingest(b"no labels yet")
    info = cstore.info(digest)
    assert info.labels == {}
    updated = cstore.update(_with(info, {"k": "v"}), "labels.k")
    assert updated.created_at == info.created_at
    assert cstore.info(digest).labels == {"k": "v"}
    assert [i.labels for i in cstore.walk()] == [{"k": "v"}]


@pytest.mark.parametrize(
    "paths",
    [("size",), ("digest",), ("labels.",), ("created_at",), ("labels", "annotations")],
)
def test_update_bad_fieldpaths_change_nothing(
    cstore: Store, ingest: Callable[..., str], paths: tuple[str, ...]
) -> None:
    digest = ingest(b"fieldpaths", {"keep": "me"})
    with pytest.raises(InvalidArgumentError):
        cstore.update(_with(cstore.info(digest), {"x": "y"}), *paths)
    assert cstore.info(digest).labels == {"keep": "me"}


def test_update_missing_blob(cstore: Store) -> None:
    digest = digest_of(b"never stored")
    with pytest.raises(NotFoundError):
        cstore.update(Info(digest, 0, None, None, {"a": "b"}))  # type: ignore[arg-type]


@pytest.mark.cargohold_leaves("ingestion")
@pytest.mark.parametrize(
    "labels",
    [{"": "v"}, {"k": "v" * 4096}, {"k" * 4000: "v" * 97}],
)
def test_bad_labels_are_rejected_everywhere(
    cstore: Store, ingest: Callable[..., str], labels: dict[str, str]
) -> None:
    digest = ingest(b"bad labels", {"ok": "1"})
    with pytest.raises(InvalidArgumentError):
        cstore.update(_with(cstore.info(digest), labels))
    assert cstore.info(digest).labels == {"ok": "1"}
    writer = cstore.writer("bad-label-commit")
    writer.write(b"other")
    with pytest.raises(InvalidArgumentError):
        writer.commit(labels=labels)
    with pytest.raises(NotFoundError):
        cstore.info(digest_of(b"other"))
    assert cstore.status("bad-label-commit").offset == 5


def test_labels_at_the_limits_round_trip(cstore: Store, ingest: Callable[..., str]) -> None:
    labels = {
        "containerd.io/gc.ref.content.l.0": digest_of(b"x"),
        "ünïcödé/ключ": "値 ✓ \n\t\"quoted\" 'single' =,;",
        "k" * 2048: "v" * 2048,
        "empty-value": "",
    }
    labels.update({f"containerd.io/gc.ref.content.m.{i}": digest_of(bytes([i])) for i in range(40)})
    digest = ingest(b"limits", labels)
    assert cstore.info(digest).labels == labels
    assert [i.labels for i in cstore.walk()] == [labels]
    smaller = dict(list(labels.items())[:3])
    cstore.update(_with(cstore.info(digest), smaller))
    assert cstore.info(digest).labels == smaller
    assert [i.labels for i in cstore.walk()] == [smaller]


def test_many_labels_round_trip(cstore: Store, ingest: Callable[..., str]) -> None:
    labels = {f"label-{i:04d}": "x" * 100 for i in range(300)}
    digest = ingest(b"many labels", labels)
    assert cstore.info(digest).labels == labels


def test_read_at_semantics(cstore: Store, ingest: Callable[..., str]) -> None:
    data = random_bytes(3 * cstore.part_size + 5, seed=20)
    digest = ingest(data)
    with cstore.reader_at(digest) as reader:
        assert reader.size == len(data) == cstore.info(digest).size
        assert reader.read_at(0, 10) == data[:10]
        assert reader.read_at(len(data) - 3, 10) == data[-3:]
        assert reader.read_at(len(data), 10) == b""
        assert reader.read_at(len(data) + 100, 10) == b""
        assert reader.read_at(5, 0) == b""
        assert reader.read_at(7, len(data)) == data[7:]
        middle = cstore.part_size - 3
        assert (
            reader.read_at(middle, 2 * cstore.part_size + 1)
            == data[middle : middle + 2 * cstore.part_size + 1]
        )
        with pytest.raises(InvalidArgumentError):
            reader.read_at(-1, 5)
        with pytest.raises(InvalidArgumentError):
            reader.read_at(0, -5)


@pytest.mark.parametrize("size", [0, 1, 10])
def test_small_blobs_read_past_eof(cstore: Store, ingest: Callable[..., str], size: int) -> None:
    data = random_bytes(size, seed=size + 30)
    digest = ingest(data)
    with cstore.reader_at(digest) as reader:
        assert reader.size == size
        assert reader.read_at(0, size + 100) == data
        assert reader.read_at(size, 1) == b""
        assert reader.read_at(size + 1, 1) == b""


def test_reader_of_missing_blob(cstore: Store) -> None:
    with pytest.raises(NotFoundError):
        cstore.reader_at(digest_of(b"missing"))
    with pytest.raises(NotFoundError):
        cstore.info(digest_of(b"missing"))


def test_info_expecting_presence_answers_the_same(
    cstore: Store, ingest: Callable[..., str]
) -> None:
    """``info(expect_present=True)`` (labels read beside the head) is only faster."""
    labelled = ingest(b"expected here", {"a": "1"})
    plain = ingest(b"expected too")
    for digest in (labelled, plain):
        assert cstore.info(digest, expect_present=True) == cstore.info(digest)
    updated = cstore.update(_with(cstore.info(plain), {"b": "2"}))
    assert cstore.info(plain, expect_present=True) == updated
    missing = digest_of(b"expected, never stored")
    with pytest.raises(NotFoundError):
        cstore.info(missing, expect_present=True)
