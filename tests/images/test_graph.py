"""The image graph: children, gc labels (containerd's scheme) and walking a stored image."""

from __future__ import annotations

import hashlib
import json

import pytest

import cargohold
from cargohold import Descriptor, Store
from cargohold.errors import InvalidArgumentError, NotFoundError
from cargohold.images import graph


def digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def desc(media_type: str, data: bytes, **annotations: str) -> dict[str, object]:
    out: dict[str, object] = {"mediaType": media_type, "digest": digest(data), "size": len(data)}
    if annotations:
        out["annotations"] = annotations
    return out


CONFIG = b'{"rootfs": {"type": "layers", "diff_ids": []}}'
LAYERS = [b"layer-0", b"layer-1", b"layer-2"]


def manifest(media_type: str = graph.OCI_MANIFEST, config_type: str = graph.OCI_CONFIG) -> bytes:
    layer_type = graph.OCI_LAYER_GZIP if media_type == graph.OCI_MANIFEST else graph.DOCKER_LAYER
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": desc(config_type, CONFIG),
            "layers": [desc(layer_type, layer) for layer in LAYERS],
        }
    ).encode()


def test_manifest_children_and_labels() -> None:
    data = manifest()
    found = graph.children(graph.OCI_MANIFEST, data)
    assert [d.digest for d in found] == [digest(CONFIG), *map(digest, LAYERS)]
    assert found[0].media_type == graph.OCI_CONFIG
    assert graph.gc_labels(graph.OCI_MANIFEST, data) == {
        "containerd.io/gc.ref.content.config": digest(CONFIG),
        "containerd.io/gc.ref.content.l.0": digest(LAYERS[0]),
        "containerd.io/gc.ref.content.l.1": digest(LAYERS[1]),
        "containerd.io/gc.ref.content.l.2": digest(LAYERS[2]),
    }


def test_docker_manifest_and_empty_media_type() -> None:
    data = manifest(graph.DOCKER_MANIFEST, graph.DOCKER_CONFIG)
    assert graph.is_graph_type(graph.DOCKER_MANIFEST)
    # No media type in the descriptor: the JSON's own mediaType decides.
    assert len(graph.children("", data)) == 4
    assert graph.media_type_of("", data) == graph.DOCKER_MANIFEST
    labels = graph.gc_labels("", data)
    assert labels["containerd.io/gc.ref.content.config"] == digest(CONFIG)
    assert labels["containerd.io/gc.ref.content.l.2"] == digest(LAYERS[2])


def test_index_children_labels_and_subject() -> None:
    one, two = manifest(), manifest(graph.DOCKER_MANIFEST, graph.DOCKER_CONFIG)
    referrer = b'{"schemaVersion": 2}'
    signature = b"not a manifest"
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": graph.OCI_INDEX,
            "manifests": [
                desc(graph.OCI_MANIFEST, one),
                desc(graph.DOCKER_MANIFEST, two),
                desc(graph.OCI_INDEX, b"{}"),
                desc("application/vnd.example.sig", signature),
                desc(graph.OCI_MANIFEST, referrer, **{"io.containerd.manifest.subject": "x"}),
            ],
            "subject": desc(graph.OCI_MANIFEST, b"subject"),
        }
    ).encode()
    found = graph.children(graph.OCI_INDEX, index)
    assert [d.digest for d in found] == [
        digest(one),
        digest(two),
        digest(b"{}"),
        digest(signature),
        digest(referrer),
        digest(b"subject"),
    ]
    # containerd labels an index's manifests, not its subject.
    assert graph.gc_labels(graph.OCI_INDEX, index) == {
        "containerd.io/gc.ref.content.m.0": digest(one),
        "containerd.io/gc.ref.content.m.1": digest(two),
        "containerd.io/gc.ref.content.0": digest(b"{}"),
        "containerd.io/gc.ref.content.1": digest(signature),
        "containerd.io/gc.ref.content.referrer.sha256." + digest(referrer)[7:19]: digest(referrer),
    }
    labels = graph.gc_labels(graph.OCI_INDEX, index)
    assert sorted(graph.label_children(labels)) == sorted(
        [digest(one), digest(two), digest(b"{}"), digest(signature), digest(referrer)]
    )


def test_label_children_ignores_other_labels() -> None:
    labels = {
        "containerd.io/gc.ref.content.l.0": "sha256:" + "1" * 64,
        "containerd.io/gc.ref.content.config": "sha256:" + "2" * 64,
        "containerd.io/gc.ref.content.l.1": "sha256:" + "1" * 64,
        "containerd.io/gc.ref.snapshot.overlayfs": "snap",
        "containerd.io/gc.ref.contentx": "sha256:" + "3" * 64,
        "app": "sha256:" + "4" * 64,
    }
    assert graph.label_children(labels) == ["sha256:" + "2" * 64, "sha256:" + "1" * 64]


@pytest.mark.parametrize("media_type", [graph.OCI_MANIFEST, graph.OCI_INDEX, graph.DOCKER_MANIFEST])
@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1, 2]",
        b'{"config": 3, "manifests": 3}',
        b'{"layers": [{"digest": "sha256:zz", "size": 1}]}',
        b'{"manifests": {"a": 1}}',
        b'{"manifests": [{"digest": "sha256:' + b"a" * 64 + b'", "size": -1}]}',
        b'{"config": {"digest": "sha256:' + b"a" * 64 + b'"}}',
    ],
)
def test_malformed_graph_json(media_type: str, data: bytes) -> None:
    with pytest.raises(InvalidArgumentError):
        graph.children(media_type, data)
    with pytest.raises(InvalidArgumentError):
        graph.gc_labels(media_type, data)


def test_leaves_have_no_children() -> None:
    assert graph.children(graph.OCI_LAYER_GZIP, b"\x1f\x8b...") == []
    assert graph.children(graph.OCI_CONFIG, b"{not json") == []
    assert graph.children("", b"\x00binary") == []
    assert graph.children("", b'{"mediaType": "application/vnd.example+json"}') == []
    assert graph.gc_labels(graph.OCI_CONFIG, CONFIG) == {}
    assert not graph.is_graph_type(graph.OCI_CONFIG)


def put(store: Store, data: bytes) -> str:
    found = digest(data)
    with store.writer(f"graph-{found}") as writer:
        writer.write(data)
        writer.commit(len(data), found)
    return found


def test_walk_a_stored_index() -> None:
    with cargohold.open_store("memory://graph-walk/store") as store:
        for blob in [CONFIG, *LAYERS]:
            put(store, blob)
        one, two = manifest(), manifest(graph.DOCKER_MANIFEST, graph.DOCKER_CONFIG)
        put(store, one)
        put(store, two)
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": graph.OCI_INDEX,
                "manifests": [desc(graph.OCI_MANIFEST, one), desc(graph.DOCKER_MANIFEST, two)],
            }
        ).encode()
        put(store, index)
        root = Descriptor("", digest(index), len(index))  # media type read from the JSON
        walked = list(graph.walk(store, root))
        assert walked[0] == root
        # Shared config and layers come once.
        assert [d.digest for d in walked] == [
            digest(index),
            digest(one),
            digest(two),
            digest(CONFIG),
            *map(digest, LAYERS),
        ]
        # A missing manifest is reported; missing leaves are not read, so they are listed.
        store.delete(digest(two))
        with pytest.raises(NotFoundError):
            list(graph.walk(store, root))
