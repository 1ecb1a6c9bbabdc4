"""Import and export against the real skopeo: an image built by hand as an OCI layout, turned
by skopeo into a docker-archive and an OCI archive, imported into file:// and S3 (moto server)
stores, exported again and read back by skopeo; and skopeo reading a file:// store directly."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import cargohold
from cargohold import Store
from cargohold.errors import (
    AlreadyExistsError,
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from cargohold.helpers import read_blob
from cargohold.images import graph
from cargohold.images.exporter import export
from cargohold.images.importer import ImportResult, import_images
from tests.images.imagekit import BuiltImage, build_oci_layout, sha256, skopeo, skopeo_inspect


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One hand-built image in every form: OCI layout, docker-archive and OCI archive (both
    written by skopeo), and a gzipped OCI archive."""
    root = tmp_path_factory.mktemp("sources")
    image = build_oci_layout(root / "layout", tag="1.0", layers=3)
    layout = f"oci:{root / 'layout'}:1.0"
    skopeo("copy", layout, f"docker-archive:{root / 'docker.tar'}:localhost/app:1.0")
    skopeo("copy", layout, f"oci-archive:{root / 'oci.tar'}:localhost/app:2.0")
    with (root / "oci.tar").open("rb") as plain, gzip.open(root / "oci.tar.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    return {"root": root, "image": image}


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    fixture = {"file": "file_store_url", "s3": "s3_store_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    opened = cargohold.open_store(url)
    try:
        yield opened
    finally:
        opened.close()


def stored(store: Store, digest: str) -> bytes:
    """A blob's bytes, read (and digest-checked) from the store."""
    sink = io.BytesIO()
    read_blob(store, digest, sink)
    return sink.getvalue()


def test_import_oci_layout_directory(store: Store, sources: dict[str, object]) -> None:
    root, image = sources["root"], sources["image"]
    assert isinstance(root, Path) and isinstance(image, BuiltImage)
    result = import_images(store, root / "layout", base_name="localhost/base")
    assert result.format == "oci"
    assert [(i.target.digest, i.names) for i in result.images] == [
        (image.manifest_digest, ("localhost/base:1.0",))
    ]
    assert (result.blobs_imported, result.blobs_skipped) == (5, 0)
    assert result.bytes_imported == sum(len(b) for b in image.blobs.values())
    for digest, data in image.blobs.items():
        assert stored(store, digest) == data
    labels = store.info(image.manifest_digest).labels
    assert labels == graph.gc_labels(graph.OCI_MANIFEST, image.manifest)
    assert labels["containerd.io/gc.ref.content.config"] == sha256(image.config)
    assert labels["containerd.io/gc.ref.content.l.2"] == sha256(image.layers[2])
    named = store.names.get("localhost/base:1.0")
    assert named.target.media_type == graph.OCI_MANIFEST
    assert named.target.size == len(image.manifest)
    # Again: everything is there already; names are set again, nothing uploaded.
    again = import_images(store, root / "layout", names=["app:again"])
    assert (again.blobs_imported, again.blobs_skipped, again.bytes_imported) == (0, 5, 0)
    assert again.images[0].names == ("1.0", "app:again")
    assert {n.name for n in store.names.list()} == {"localhost/base:1.0", "1.0", "app:again"}


@pytest.mark.parametrize("archive", ["oci.tar", "oci.tar.gz"])
def test_import_oci_archive(store: Store, sources: dict[str, object], archive: str) -> None:
    root, image = sources["root"], sources["image"]
    assert isinstance(root, Path) and isinstance(image, BuiltImage)
    result = import_images(store, root / archive)
    assert result.format == "oci"
    [imported] = result.images
    assert imported.names == ("localhost/app:2.0",)
    # skopeo copied the OCI image as it is: the same manifest, config and layers.
    assert imported.target.digest == image.manifest_digest
    assert result.blobs_imported == 5
    for digest, data in image.blobs.items():
        assert stored(store, digest) == data


def test_import_docker_archive(store: Store, sources: dict[str, object]) -> None:
    root, image = sources["root"], sources["image"]
    assert isinstance(root, Path) and isinstance(image, BuiltImage)
    result = import_images(store, root / "docker.tar", names=["localhost/other:x"])
    assert result.format == "docker-archive"
    [imported] = result.images
    assert imported.names == ("localhost/app:1.0", "localhost/other:x")
    assert imported.target.media_type == graph.OCI_MANIFEST
    manifest = json.loads(stored(store, imported.target.digest))
    assert manifest["mediaType"] == graph.OCI_MANIFEST
    assert manifest["config"]["mediaType"] == graph.OCI_CONFIG
    # docker-archives hold uncompressed layers: their digests are the config's diff_ids.
    assert [layer["digest"] for layer in manifest["layers"]] == image.diff_ids
    assert {layer["mediaType"] for layer in manifest["layers"]} == {graph.OCI_LAYER}
    config = stored(store, manifest["config"]["digest"])
    assert json.loads(config)["rootfs"]["diff_ids"] == image.diff_ids
    for layer, raw in zip(manifest["layers"], image.diff_ids, strict=True):
        assert sha256(stored(store, layer["digest"])) == raw
    labels = store.info(imported.target.digest).labels
    assert labels == graph.gc_labels(graph.OCI_MANIFEST, stored(store, imported.target.digest))
    assert set(graph.label_children(labels)) == {manifest["config"]["digest"], *image.diff_ids}
    assert store.names.get("localhost/other:x").target.digest == imported.target.digest


def test_export_is_read_by_skopeo(store: Store, sources: dict[str, object], tmp_path: Path) -> None:
    root, image = sources["root"], sources["image"]
    assert isinstance(root, Path) and isinstance(image, BuiltImage)
    oci = import_images(store, root / "oci.tar").images[0]
    docker = import_images(store, root / "docker.tar").images[0]
    names = ["localhost/app:2.0", "localhost/app:1.0"]
    archive = export(store, names, tmp_path / "out.tar")
    directory = export(store, names, tmp_path / "out")
    assert archive.archive and not directory.archive
    expected = set(image.blobs) | {
        docker.target.digest,
        *(
            d.digest
            for d in graph.children(graph.OCI_MANIFEST, stored(store, docker.target.digest))
        ),
    }
    assert archive.blobs == directory.blobs == len(expected)
    written = {f"sha256:{p.name}" for p in (tmp_path / "out" / "blobs" / "sha256").iterdir()}
    assert written == expected
    for kind, path in [("oci-archive", tmp_path / "out.tar"), ("oci", tmp_path / "out")]:
        for name, target in [
            ("localhost/app:2.0", oci.target),
            ("localhost/app:1.0", docker.target),
        ]:
            raw = skopeo("inspect", "--raw", f"{kind}:{path}:{name}")
            assert sha256(raw.encode()) == target.digest  # byte-identical manifest
            assert raw.encode() == stored(store, target.digest)
    # Every blob in the directory is the store's bytes.
    for blob in (tmp_path / "out" / "blobs" / "sha256").iterdir():
        assert stored(store, f"sha256:{blob.name}") == blob.read_bytes()
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [
        m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]
    ] == names
    # skopeo copies the export elsewhere and the blobs arrive intact.
    skopeo(
        "copy",
        f"oci-archive:{tmp_path / 'out.tar'}:localhost/app:1.0",
        f"oci:{tmp_path / 'copy'}:x",
    )
    copied = skopeo_inspect(f"oci:{tmp_path / 'copy'}:x")
    assert copied["config"] == json.loads(stored(store, docker.target.digest))["config"]
    # A directory that is not empty is not written over.
    with pytest.raises(AlreadyExistsError):
        export(store, names, tmp_path / "out")
    with pytest.raises(NotFoundError):
        export(store, ["localhost/missing:1"], tmp_path / "missing.tar")
    assert not (tmp_path / "missing.tar").exists()


def test_skopeo_reads_a_file_store(file_store_url: str, sources: dict[str, object]) -> None:
    root, image = sources["root"], sources["image"]
    assert isinstance(root, Path) and isinstance(image, BuiltImage)
    with cargohold.open_store(file_store_url) as store:
        import_images(store, root / "docker.tar", names=["localhost:5000/team/app:1.0"])
        import_images(store, root / "layout", base_name="app")
        directory = file_store_url.removeprefix("file://")
        for name in ["localhost:5000/team/app:1.0", "localhost/app:1.0", "app:1.0"]:
            raw = skopeo("inspect", "--raw", f"oci:{directory}:{name}")
            assert raw.encode() == stored(store, store.names.get(name).target.digest)
        info = json.loads(skopeo("inspect", f"oci:{directory}:app:1.0"))
        assert info["Digest"] == image.manifest_digest
        assert info["Layers"] == [sha256(layer) for layer in image.layers]
        skopeo("copy", f"oci:{directory}:localhost/app:1.0", f"oci:{root.parent / 'fromstore'}:y")


def test_refused_before_anything_is_named(
    store: Store, sources: dict[str, object], tmp_path: Path
) -> None:
    root, image = sources["root"], sources["image"]
    assert isinstance(root, Path) and isinstance(image, BuiltImage)
    broken = tmp_path / "broken"
    shutil.copytree(root / "layout", broken)
    layer = broken / "blobs" / "sha256" / sha256(image.layers[1]).split(":")[1]
    data = bytearray(layer.read_bytes())
    data[100] ^= 0xFF
    layer.write_bytes(bytes(data))
    with pytest.raises((DataLossError, FailedPreconditionError)):
        import_images(store, broken, names=["app:broken"])
    assert store.names.list() == []
    with pytest.raises(NotFoundError):
        store.info(image.manifest_digest)  # parents never go in before their children
    layer.unlink()
    with pytest.raises(FailedPreconditionError, match="lacks"):
        import_images(store, broken)
    with pytest.raises(InvalidArgumentError):
        import_images(store, root / "layout", names=["Bad:Name"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError):
        import_images(store, tmp_path / "empty")
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(InvalidArgumentError):
        import_images(store, tmp_path / "junk.tar")
    assert store.names.list() == []


def test_two_images_take_no_single_name(store: Store, tmp_path: Path) -> None:
    one = build_oci_layout(tmp_path / "one", tag="1")
    two = build_oci_layout(tmp_path / "two", tag="2")
    index = json.loads((tmp_path / "one" / "index.json").read_text())
    index["manifests"] += json.loads((tmp_path / "two" / "index.json").read_text())["manifests"]
    for blob in (tmp_path / "two" / "blobs" / "sha256").iterdir():
        shutil.copy(blob, tmp_path / "one" / "blobs" / "sha256" / blob.name)
    (tmp_path / "one" / "index.json").write_text(json.dumps(index))
    with pytest.raises(InvalidArgumentError, match="2 images"):
        import_images(store, tmp_path / "one", names=["app:x"])
    result = import_images(store, tmp_path / "one", base_name="localhost/multi")
    assert {i.target.digest: i.names for i in result.images} == {
        one.manifest_digest: ("localhost/multi:1",),
        two.manifest_digest: ("localhost/multi:2",),
    }
    for built in (one, two):
        for blob_digest, data in built.blobs.items():
            assert stored(store, blob_digest) == data


def _rewrite_docker_archive(source: Path, dest: Path, layer_path: Callable[[str], str]) -> None:
    """A copy of a docker-archive whose manifest.json names each layer by another path."""
    with tarfile.open(source) as tar_in, tarfile.open(dest, "w") as tar_out:
        manifest = json.loads(tar_in.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for entry in manifest:
            entry["Layers"] = [layer_path(layer) for layer in entry["Layers"]]
        for member in tar_in.getmembers():
            if member.name == "manifest.json":
                continue
            tar_out.addfile(member, tar_in.extractfile(member) if member.isfile() else None)
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar_out.addfile(info, io.BytesIO(data))


def test_docker_archive_layouts(store: Store, sources: dict[str, object], tmp_path: Path) -> None:
    """Layers named as legacy ``<id>/layer.tar`` symlinks, as ``./<hex>.tar`` and as newer
    Docker's ``blobs/sha256/<hex>`` all import to the same image."""
    root, image = sources["root"], sources["image"]
    assert isinstance(root, Path) and isinstance(image, BuiltImage)
    with tarfile.open(root / "docker.tar") as tar:
        links = {
            m.linkname.removeprefix("../"): m.name
            for m in tar.getmembers()
            if m.issym() and m.name.endswith("/layer.tar")
        }
    assert len(links) == 3
    legacy = tmp_path / "legacy.tar"
    _rewrite_docker_archive(root / "docker.tar", legacy, lambda layer: links[layer])
    dotted = tmp_path / "dotted.tar"
    _rewrite_docker_archive(root / "docker.tar", dotted, lambda layer: f"./{layer}")
    newer = tmp_path / "newer"
    newer.mkdir()
    with tarfile.open(root / "docker.tar") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        (newer / "blobs" / "sha256").mkdir(parents=True)
        for path in [manifest[0]["Config"], *manifest[0]["Layers"]]:
            data = tar.extractfile(path).read()  # type: ignore[union-attr]
            (newer / "blobs" / "sha256" / sha256(data)[7:]).write_bytes(data)
    manifest[0]["Config"] = "blobs/sha256/" + manifest[0]["Config"].removesuffix(".json")
    manifest[0]["Layers"] = [
        "blobs/sha256/" + x.removesuffix(".tar") for x in manifest[0]["Layers"]
    ]
    (newer / "manifest.json").write_text(json.dumps(manifest))
    first = import_images(store, root / "docker.tar")
    for path in (legacy, dotted, newer):
        again = import_images(store, path)
        assert again.format == "docker-archive"
        assert again.images == first.images
        assert again.blobs_imported == 0


def test_import_and_export_an_index(store: Store, tmp_path: Path) -> None:
    """A multi-platform image: an index of two manifests (labels m.0, m.1 on the index)."""
    amd = build_oci_layout(tmp_path / "amd", tag="a")
    arm = build_oci_layout(tmp_path / "arm", tag="b")
    layout = tmp_path / "multi"
    shutil.copytree(amd.path, layout)
    for blob in (arm.path / "blobs" / "sha256").iterdir():
        shutil.copy(blob, layout / "blobs" / "sha256" / blob.name)
    platforms = [("amd64", amd), ("arm64", arm)]
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": graph.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": graph.OCI_MANIFEST,
                    "digest": built.manifest_digest,
                    "size": len(built.manifest),
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for arch, built in platforms
            ],
        }
    ).encode()
    (layout / "blobs" / "sha256" / sha256(index)[7:]).write_bytes(index)
    top = {
        "mediaType": graph.OCI_INDEX,
        "digest": sha256(index),
        "size": len(index),
        "annotations": {"org.opencontainers.image.ref.name": "localhost/multi:1"},
    }
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    result = import_images(store, layout)
    assert [(i.target.digest, i.names) for i in result.images] == [
        (sha256(index), ("localhost/multi:1",))
    ]
    assert result.blobs_imported == 1 + len(amd.blobs) + len(arm.blobs)
    assert store.info(sha256(index)).labels == {
        "containerd.io/gc.ref.content.m.0": amd.manifest_digest,
        "containerd.io/gc.ref.content.m.1": arm.manifest_digest,
    }
    for built in (amd, arm):
        assert store.info(built.manifest_digest).labels == graph.gc_labels(
            graph.OCI_MANIFEST, built.manifest
        )
    export(store, ["localhost/multi:1"], tmp_path / "multi-out.tar")
    raw = skopeo("inspect", "--raw", f"oci-archive:{tmp_path / 'multi-out.tar'}:localhost/multi:1")
    assert raw.encode() == index
    skopeo(
        "copy",
        "--override-arch",
        "arm64",
        f"oci-archive:{tmp_path / 'multi-out.tar'}:localhost/multi:1",
        f"oci:{tmp_path / 'arm-copy'}:x",
    )
    assert skopeo_inspect(f"oci:{tmp_path / 'arm-copy'}:x") == json.loads(arm.manifest)


@pytest.mark.slow
def test_import_streams_layers(file_store_url: str, tmp_path: Path) -> None:
    """A 128 MiB layer goes in without ever being held in memory whole (Python's peak
    allocation stays below the layer's size: the store's writer window, nothing more)."""
    size = 128 * 1024 * 1024
    payload = tmp_path / "payload.bin"
    with payload.open("wb") as out:
        for _ in range(size // (1 << 20)):
            out.write(os.urandom(1 << 20))
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        tar.add(payload, "payload.bin")
    payload.unlink()
    hasher = hashlib.sha256()
    with layer.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            hasher.update(chunk)
    diff_id = f"sha256:{hasher.hexdigest()}"
    config = json.dumps({"os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["big:1"], "Layers": ["l/layer.tar"]}])
    with tarfile.open(tmp_path / "big.tar", "w") as tar:
        tar.add(layer, "l/layer.tar")
        for name, text in [("c.json", config), ("manifest.json", manifest)]:
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    layer.unlink()
    with cargohold.open_store(file_store_url) as store:
        tracemalloc.start()
        try:
            result = import_images(store, tmp_path / "big.tar")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.bytes_imported > size
        assert store.info(diff_id).size > size
        assert peak < size * 7 // 8, f"peak {peak >> 20} MiB for a {size >> 20} MiB layer"


def test_concurrent_imports_of_shared_blobs(store: Store, sources: dict[str, object]) -> None:
    """Imports sharing blobs at once: each blob is written once, every import succeeds."""
    root, image = sources["root"], sources["image"]
    assert isinstance(root, Path) and isinstance(image, BuiltImage)
    results: list[object] = []

    def run(path: Path, name: str) -> None:
        try:
            results.append(import_images(store, path, names=[name], busy_wait=120))
        except BaseException as exc:
            results.append(exc)

    workers = [
        threading.Thread(target=run, args=(root / archive, f"app:{i}"))
        for i, archive in enumerate(["oci.tar", "oci.tar", "layout", "oci.tar.gz"])
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    done = [r for r in results if not isinstance(r, BaseException)]
    assert len(done) == 4
    assert sum(r.blobs_imported for r in done) == len(image.blobs)  # type: ignore[attr-defined]
    assert {n.name: n.target.digest for n in store.names.list() if n.name.startswith("app:")} == {
        f"app:{i}": image.manifest_digest for i in range(4)
    }


def test_interrupted_import_names_nothing_and_reruns(
    store: Store, sources: dict[str, object]
) -> None:
    root, image = sources["root"], sources["image"]
    assert isinstance(root, Path) and isinstance(image, BuiltImage)
    seen: list[str] = []

    def stop_after_two(desc: object, written: bool) -> None:
        seen.append(str(desc))
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_images(store, root / "oci.tar", progress=stop_after_two)
    assert store.names.list() == []
    # Blobs are written several at once: those running when the interruption came were given
    # time to end, so at least the two reported are stored (the manifest, last, is not).
    with pytest.raises(NotFoundError):
        store.info(image.manifest_digest)
    rerun = import_images(store, root / "oci.tar")
    assert rerun.blobs_imported + rerun.blobs_skipped == len(image.blobs)
    assert rerun.blobs_skipped >= 2
    for digest, data in image.blobs.items():
        assert stored(store, digest) == data
    assert store.names.get("localhost/app:2.0").target.digest == image.manifest_digest


def test_import_commits_no_parent_before_its_children(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blobs go in several at once, but a manifest or index is committed only once every blob
    it names is: checked at each commit of a multi-platform image's manifests and index, with
    the first layer slowed down so that the others finish first."""
    amd = build_oci_layout(tmp_path / "amd", tag="a", layers=3)
    arm = build_oci_layout(tmp_path / "arm", tag="b", layers=2)
    layout = tmp_path / "multi"
    shutil.copytree(amd.path, layout)
    for blob in (arm.path / "blobs" / "sha256").iterdir():
        shutil.copy(blob, layout / "blobs" / "sha256" / blob.name)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": graph.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": graph.OCI_MANIFEST,
                    "digest": b.manifest_digest,
                    "size": len(b.manifest),
                }
                for b in (amd, arm)
            ],
        }
    ).encode()
    (layout / "blobs" / "sha256" / sha256(index)[7:]).write_bytes(index)
    top = {"mediaType": graph.OCI_INDEX, "digest": sha256(index), "size": len(index)}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    parents = {
        amd.manifest_digest: list(amd.blobs),
        arm.manifest_digest: list(arm.blobs),
        sha256(index): [amd.manifest_digest, arm.manifest_digest],
    }
    slow = sha256(amd.layers[0])
    checked: list[str] = []
    make_writer = store.writer

    def writer(ref: str, *args: object, **kwargs: object) -> object:
        inner = make_writer(ref, *args, **kwargs)  # type: ignore[arg-type]
        digest = ref.removeprefix("import-")
        commit = inner.commit

        def checked_commit(*cargs: object, **ckwargs: object) -> None:
            if digest == slow:
                time.sleep(0.5)
            for child in parents.get(digest, []):
                if child != digest:
                    assert store.info(child).digest == child, f"{digest} before {child}"
            checked.append(digest)
            commit(*cargs, **ckwargs)  # type: ignore[arg-type]

        inner.commit = checked_commit  # type: ignore[method-assign]
        return inner

    monkeypatch.setattr(store, "writer", writer)
    result = import_images(store, layout, concurrency=4)
    assert result.blobs_imported == len({*amd.blobs, *arm.blobs}) + 1
    assert set(parents) <= set(checked)
    assert checked.index(slow) < checked.index(amd.manifest_digest) < checked.index(sha256(index))
    for digest, data in {**amd.blobs, **arm.blobs}.items():
        assert stored(store, digest) == data


def test_import_concurrency_must_be_positive(store: Store, sources: dict[str, object]) -> None:
    root = sources["root"]
    assert isinstance(root, Path)
    with pytest.raises(InvalidArgumentError):
        import_images(store, root / "layout", concurrency=0)


def test_import_waits_for_a_blob_being_written(
    store: Store, sources: dict[str, object], tmp_path: Path
) -> None:
    """A blob whose ingestion ref another writer holds is waited for, then found stored."""
    root, image = sources["root"], sources["image"]
    assert isinstance(root, Path) and isinstance(image, BuiltImage)
    layer = image.layers[0]
    digest = sha256(layer)
    writer = store.writer(f"import-{digest}")
    writer.write(layer[:100])
    finished: list[object] = []
    worker = threading.Thread(
        target=lambda: finished.append(import_images(store, root / "oci.tar", busy_wait=60))
    )
    worker.start()
    time.sleep(1.5)
    assert not finished  # still waiting for the ref
    writer.write(layer[100:])
    writer.commit(len(layer), digest)
    writer.close()
    worker.join(timeout=120)
    [result] = finished
    assert isinstance(result, ImportResult)
    assert result.blobs_imported == len(image.blobs) - 1
    assert stored(store, digest) == layer
    # Waiting is bounded: a ref held longer than busy_wait fails the import, naming nothing.
    other = build_oci_layout(tmp_path / "other", tag="9")
    held = store.writer(f"import-{sha256(other.layers[0])}")
    try:
        with pytest.raises(UnavailableError):
            import_images(store, other.path, names=["app:other"], busy_wait=0.5)
    finally:
        held.close()
    with pytest.raises(NotFoundError):
        store.names.get("app:other")
