"""Walk, list_statuses, delete and abort (CONTRACT.md "Listing", "Removing")."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cargohold import Descriptor, InvalidArgumentError, NotFoundError, Store

from ..helpers import digest_of, random_bytes


def _digests(store: Store, *filters: str) -> set[str]:
    return {info.digest for info in store.walk(*filters)}


def test_walk_with_filters(cstore: Store, ingest: Callable[..., str]) -> None:
    a = ingest(b"a" * 10, {"containerd.io/gc.root": "2024", "kind": "layer"})
    b = ingest(b"b" * 20, {"kind": "config"})
    c = ingest(b"c" * 30)
    assert _digests(cstore) == {a, b, c}
    assert _digests(cstore, "") == {a, b, c}
    assert _digests(cstore, 'labels."containerd.io/gc.root"') == {a}
    assert _digests(cstore, "labels.kind==layer") == {a}
    assert _digests(cstore, "labels.kind!=layer") == {b, c}
    assert _digests(cstore, "labels.kind~=^(lay|conf)") == {a, b}
    assert _digests(cstore, "labels.kind~=/^c/") == {b}
    assert _digests(cstore, "labels.missing~=^$") == {a, b, c}
    assert _digests(cstore, "size==20") == {b}
    assert _digests(cstore, f"digest=={c}") == {c}
    assert _digests(cstore, "labels.kind==layer", "size==30") == {a, c}
    assert _digests(cstore, "labels.kind,size==20") == {b}
    assert _digests(cstore, 'labels.kind=="config"') == {b}
    assert _digests(cstore, "labels.kind") == {a, b}


@pytest.mark.parametrize(
    "bad", ["labels.kind==", "==x", "labels.kind=x", "a==b,", "labels.kind~=(", 'x=="unterminated']
)
def test_malformed_filters(cstore: Store, ingest: Callable[..., str], bad: str) -> None:
    ingest(b"filters")
    with pytest.raises(InvalidArgumentError):
        list(cstore.walk(bad))
    with pytest.raises(InvalidArgumentError):
        cstore.list_statuses(bad)


def test_walk_many_blobs(cstore: Store, ingest: Callable[..., str]) -> None:
    made = {ingest(f"blob {i}".encode(), {"n": str(i)} if i % 3 == 0 else None) for i in range(40)}
    seen = list(cstore.walk())
    assert {i.digest for i in seen} == made
    assert len(seen) == 40
    assert {i.digest for i in cstore.walk("labels.n")} == {
        digest_of(f"blob {i}".encode()) for i in range(0, 40, 3)
    }


@pytest.mark.cargohold_leaves("ingestion")
def test_list_statuses_with_filters(cstore: Store) -> None:
    expected = digest_of(b"zzz")
    cstore.writer("ns/1/layer-a").close()
    cstore.writer("ns/2/layer-b", Descriptor(digest=expected)).close()
    with cstore.writer("other") as writer:
        writer.write(b"12345")
    refs = {s.ref: s for s in cstore.list_statuses()}
    assert set(refs) == {"ns/1/layer-a", "ns/2/layer-b", "other"}
    assert refs["other"].offset == 5
    assert {s.ref for s in cstore.list_statuses("ref~=^ns/")} == {"ns/1/layer-a", "ns/2/layer-b"}
    assert {s.ref for s in cstore.list_statuses(f"expected=={expected}")} == {"ns/2/layer-b"}
    assert {s.ref for s in cstore.list_statuses("expected")} == {"ns/2/layer-b"}
    assert {s.ref for s in cstore.list_statuses("ref==other", "ref==ns/1/layer-a")} == {
        "other",
        "ns/1/layer-a",
    }


def test_delete(cstore: Store, ingest: Callable[..., str]) -> None:
    keep = ingest(b"keep", {"a": "b"})
    gone = ingest(b"gone", {"c": "d"})
    cstore.delete(gone)
    with pytest.raises(NotFoundError):
        cstore.info(gone)
    with pytest.raises(NotFoundError):
        cstore.delete(gone)
    assert _digests(cstore) == {keep}
    again = ingest(b"gone")
    assert cstore.info(again).labels == {}  # labels went with the blob


def test_abort(cstore: Store) -> None:
    data = random_bytes(3 * cstore.part_size + 1, seed=40)
    writer = cstore.writer("to-abort", Descriptor(digest=digest_of(data)))
    writer.write(data[: 2 * cstore.part_size + 5])
    writer.close()
    cstore.abort("to-abort")
    with pytest.raises(NotFoundError):
        cstore.status("to-abort")
    with pytest.raises(NotFoundError):
        cstore.abort("to-abort")
    assert cstore.list_statuses() == []
    if cstore.driver.limits.abort_removes_parts:
        assert list(cstore.driver.list_uploads(cstore.prefix)) == []
    leftovers = [o.key for o in cstore.driver.list(cstore.prefix) if "/ingest/" in "/" + o.key]
    assert leftovers == []
    with pytest.raises(NotFoundError):
        cstore.abort("never-started")


@pytest.mark.cargohold_leaves("ingestion")
@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sha256",
        "sha256:",
        "sha256:abc",
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "md5:" + "0" * 32,
        "sha512:" + "0" * 64,
        "SHA256:" + "0" * 64,
        " sha256:" + "0" * 64,
    ],
)
def test_malformed_digests(cstore: Store, ingest: Callable[..., str], bad: str) -> None:
    kept = ingest(b"kept")
    for call in (cstore.info, cstore.delete, cstore.reader_at):
        with pytest.raises(InvalidArgumentError):
            call(bad)
    with pytest.raises(InvalidArgumentError):
        cstore.writer("bad-digest", Descriptor(digest=bad or "x"))
    writer = cstore.writer("commit-bad-digest")
    writer.write(b"abc")
    with pytest.raises(InvalidArgumentError):
        writer.commit(3, bad or "x")
    assert cstore.status("commit-bad-digest").offset == 3
    assert _digests(cstore) == {kept}


def test_bad_refs_and_sizes(cstore: Store) -> None:
    with pytest.raises(InvalidArgumentError):
        cstore.writer("")
    with pytest.raises(InvalidArgumentError):
        cstore.writer("x" * 4097)
    with pytest.raises(InvalidArgumentError):
        cstore.writer("neg", Descriptor(size=-1))
    for call in (cstore.status, cstore.abort):
        with pytest.raises(InvalidArgumentError):
            call("")
    assert cstore.list_statuses() == []
