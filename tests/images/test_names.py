"""Image names in the store's index.json: syntax, targets, removal, other tools' entries, and
writers of different names at once (threads and processes) on file:// and S3 (moto server)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading

import pytest

import cargohold
from cargohold import Descriptor, Store
from cargohold.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from cargohold.layout import Layout
from cargohold.names import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    INDEX_MEDIA_TYPE,
    NameStore,
    validate_name,
)

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(params=["file", "s3"])
def url(request: pytest.FixtureRequest) -> str:
    fixture = {"file": "file_store_url", "s3": "s3_store_url"}[request.param]
    found: str = request.getfixturevalue(fixture)
    return found


@pytest.fixture
def store_url(url: str) -> str:
    """The store tests/conftest.py's ``store`` fixture opens: this module's kinds only."""
    return url


def put(store: Store, data: bytes) -> Descriptor:
    """Store ``data``; its descriptor (as a manifest)."""
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    with store.writer(f"test-{digest}") as writer:
        writer.write(data)
        writer.commit(len(data), digest)
    return Descriptor(MANIFEST, digest, len(data))


def raw_index(store: Store) -> dict[str, object]:
    index: dict[str, object] = json.loads(store.driver.get(Layout(store.prefix).index_key))
    return index


@pytest.mark.parametrize(
    "name",
    [
        "app",
        "app:latest",
        "localhost:5000/team/app:1.0",
        "registry.example.test/a/b/c:v1.2-rc_3",
        "localhost/app@sha256:" + "a" * 64,
        "app:1.0@sha256:" + "b" * 64,
        "[::1]:5000/app:x",
        "a__b/c-d--e.f:T",
        "MyHost.test:443/app",
    ],
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "App:1",
        "team/App",
        "app:",
        ":tag",
        "app@sha256:short",
        "app@md5:" + "a" * 32,
        "app:" + "t" * 129,
        "a" * 256,
        "app:tag with space",
        "/app",
        "app/",
        "app:-tag",
        "localhost:port/app",
    ],
)
def test_invalid_names(store: Store, name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        validate_name(name)
    desc = put(store, b"manifest")
    with pytest.raises(InvalidArgumentError):
        store.names.set(name, desc)
    assert store.names.list() == []


def test_set_get_list_remove(store: Store) -> None:
    names = store.names
    one, two = put(store, b"one"), put(store, b"two")
    set_one = names.set("localhost:5000/team/app:1.0", one)
    assert set_one.name == "localhost:5000/team/app:1.0"
    assert set_one.target.digest == one.digest
    names.set_many({"app:latest": two, "app:2": two})
    assert [n.name for n in names.list()] == ["app:2", "app:latest", "localhost:5000/team/app:1.0"]
    assert names.get("app:latest").target.digest == two.digest
    # Renaming is a set: the name moves to the new target, no duplicate entry.
    names.set("app:latest", one)
    assert names.get("app:latest").target.digest == one.digest
    index = raw_index(store)
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == INDEX_MEDIA_TYPE
    entries = index["manifests"]
    assert isinstance(entries, list) and len(entries) == 3
    for entry in entries:
        annotations = entry["annotations"]
        assert annotations[ANNOTATION_REF_NAME] == annotations[ANNOTATION_IMAGE_NAME]
        assert entry["mediaType"] == MANIFEST
    marker = json.loads(store.driver.get(Layout(store.prefix).oci_layout_key))
    assert marker == {"imageLayoutVersion": "1.0.0"}
    assert names.remove("app:2", "app:latest") == ["app:2", "app:latest"]
    assert [n.name for n in names.list()] == ["localhost:5000/team/app:1.0"]
    with pytest.raises(NotFoundError):
        names.get("app:2")


def test_remove_all_or_nothing(store: Store) -> None:
    names = store.names
    names.set("app:1", put(store, b"x"))
    with pytest.raises(NotFoundError, match="app:missing"):
        names.remove("app:1", "app:missing")
    assert [n.name for n in names.list()] == ["app:1"]


def test_set_refuses_missing_target(store: Store) -> None:
    names = store.names
    present = put(store, b"present")
    missing = Descriptor(MANIFEST, "sha256:" + "c" * 64, 10)
    with pytest.raises(FailedPreconditionError, match=missing.digest):
        names.set_many({"app:ok": present, "app:bad": missing})
    assert names.list() == []  # one write: nothing of it happened
    with pytest.raises(InvalidArgumentError):
        names.set("app:size", Descriptor(MANIFEST, present.digest, present.size + 1))


def test_entries_of_other_tools_are_kept(store: Store) -> None:
    target = put(store, b"target")
    layout = Layout(store.prefix)
    foreign = [
        {"mediaType": MANIFEST, "digest": target.digest, "size": target.size},
        {
            "mediaType": MANIFEST,
            "digest": target.digest,
            "size": target.size,
            "annotations": {ANNOTATION_REF_NAME: "v1", "vendor": "x"},
        },
    ]
    store.driver.put(
        layout.index_key, json.dumps({"schemaVersion": 2, "manifests": foreign}).encode()
    )
    names = store.names
    assert [n.name for n in names.list()] == ["v1"]
    names.set("app:1", target)
    names.remove("app:1")
    assert raw_index(store)["manifests"] == foreign


def _set_names(url: str, worker: int, count: int, digest: str, size: int) -> None:
    with cargohold.open_store(url) as store:
        names = NameStore(store.driver, Layout(store.prefix))
        for i in range(count):
            names.set(f"localhost/w{worker}/app:{i}", Descriptor(MANIFEST, digest, size))


def test_concurrent_writers_lose_no_name(store: Store, url: str) -> None:
    target = put(store, b"shared target")
    threads, processes, count = 4, 3, 5
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_set_names, args=(url, 100 + p, count, target.digest, target.size))
        for p in range(processes)
    ]
    for child in children:
        child.start()
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            _set_names(url, worker, count, target.digest, target.size)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert not worker.is_alive()
    for child in children:
        child.join(timeout=300)
        assert child.exitcode == 0
    assert errors == []
    found = {n.name for n in store.names.list()}
    expected = {
        f"localhost/w{w}/app:{i}"
        for w in [*range(threads), *range(100, 100 + processes)]
        for i in range(count)
    }
    assert found == expected
    assert len(raw_index(store)["manifests"]) == len(expected)


def test_requests_per_name_operation(store: Store) -> None:
    """Reads are one get; the first write into a store heads the target and learns with one
    head that there is no index yet; later writes read the index with its etag (head, get,
    head) and write it back if-match."""
    target = put(store, b"manifest for counting")
    counted = store.driver
    counted.reset_calls()
    store.names.set("app:1", target)
    assert dict(counted.calls) == {"head": 2, "put": 2}  # target, index; oci-layout, index
    counted.reset_calls()
    store.names.set("app:2", target)
    assert dict(counted.calls) == {"head": 3, "get": 1, "put": 1}
    counted.reset_calls()
    assert [n.name for n in store.names.list()] == ["app:1", "app:2"]
    assert store.names.get("app:2").target.digest == target.digest
    assert dict(counted.calls) == {"get": 2}


def test_known_targets_need_no_head(store: Store) -> None:
    target = put(store, b"manifest the caller has just listed")
    store.names.set("first", target)  # the index exists: what follows is the usual write
    counted = store.driver
    counted.reset_calls()
    store.names.set_many({"app:1": target}, known={target.digest: target.size})
    assert dict(counted.calls) == {"head": 2, "get": 1, "put": 1}  # the index's etag only
    with pytest.raises(InvalidArgumentError):  # the known size still checks the descriptor
        store.names.set_many({"app:2": target}, known={target.digest: target.size + 1})
    assert [n.name for n in store.names.list()] == ["app:1", "first"]


def test_a_new_index_is_written_without_reading_it(store: Store) -> None:
    target = put(store, b"manifest for a new index")
    listing = store.names.listing()
    assert listing.names == [] and not listing.index_exists
    store.names.ensure_layout()
    counted = store.driver
    counted.reset_calls()
    known = {target.digest: target.size}
    store.names.set_many({"app:1": target}, known=known, new_index=True)
    assert dict(counted.calls) == {"put": 1}  # index.json, create-only
    assert store.names.listing().index_exists
    assert raw_index(store)["manifests"]  # a valid layout: oci-layout was written first
    assert store.driver.head(Layout(store.prefix).oci_layout_key).size > 0
    # Told "new" although an index appeared meanwhile: the create-only write fails and the
    # usual read-modify-write keeps both names.
    store.names.set_many({"app:2": target}, known=known, new_index=True)
    assert [n.name for n in store.names.list()] == ["app:1", "app:2"]
