"""Test images built in code: random layers, a config, OCI manifests and indexes, stored with
containerd's gc labels (as a pull would leave them) and optionally named."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from cargohold import Store
from cargohold.helpers import write_blob
from cargohold.images import graph
from cargohold.types import Descriptor

__all__ = ["Image", "build_image", "build_index", "digest_of", "put_blob", "random_bytes"]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def random_bytes(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def put_blob(
    store: Store, data: bytes, media_type: str, labels: dict[str, str] | None = None
) -> Descriptor:
    """Store ``data`` (with ``labels``) and return its descriptor."""
    digest = digest_of(data)
    write_blob(
        store,
        f"build-{digest}",
        io.BytesIO(data),
        expected=digest,
        size=len(data),
        labels=labels or {},
    )
    return Descriptor(media_type, digest, len(data))


def _node(store: Store, media_type: str, doc: dict[str, object]) -> Descriptor:
    data = json.dumps(doc, indent=2).encode()
    return put_blob(store, data, media_type, graph.gc_labels(media_type, data))


@dataclass
class Image:
    """What ``build_image`` stored: the manifest (the image's root), config and layers."""

    manifest: Descriptor
    config: Descriptor
    layers: list[Descriptor]
    extra: list[Descriptor] = field(default_factory=list)

    @property
    def blobs(self) -> set[str]:
        """Every digest of the image, manifest included."""
        found = {self.manifest.digest, self.config.digest, *(d.digest for d in self.layers)}
        return found | {d.digest for d in self.extra}


def build_image(
    store: Store,
    rng: random.Random,
    *,
    layers: Sequence[int] = (4096, 8192),
    name: str | None = None,
    layer_labels: dict[str, str] | None = None,
) -> Image:
    """Random layers of the given sizes, a config naming them, an OCI manifest (named
    ``name`` when given). Layers carry ``layer_labels`` too."""
    stored = [
        put_blob(store, random_bytes(rng, size), graph.OCI_LAYER_GZIP, layer_labels)
        for size in layers
    ]
    config_doc = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [d.digest for d in stored]},
        "config": {"Env": [f"SEED={rng.random()}"]},
    }
    config = put_blob(store, json.dumps(config_doc).encode(), graph.OCI_CONFIG)
    manifest = _node(
        store,
        graph.OCI_MANIFEST,
        {
            "schemaVersion": 2,
            "mediaType": graph.OCI_MANIFEST,
            "config": _json(config),
            "layers": [_json(d) for d in stored],
        },
    )
    if name is not None:
        store.names.set(name, manifest)
    return Image(manifest, config, stored)


def build_index(
    store: Store, images: Sequence[Image], *, name: str | None = None
) -> tuple[Descriptor, set[str]]:
    """An OCI index over ``images``' manifests (named ``name`` when given); returns it and
    every digest of its closure."""
    index = _node(
        store,
        graph.OCI_INDEX,
        {
            "schemaVersion": 2,
            "mediaType": graph.OCI_INDEX,
            "manifests": [
                {**_json(image.manifest), "platform": {"architecture": f"arch{i}", "os": "linux"}}
                for i, image in enumerate(images)
            ],
        },
    )
    if name is not None:
        store.names.set(name, index)
    closure = {index.digest}.union(*(image.blobs for image in images))
    return index, closure


def _json(desc: Descriptor) -> dict[str, object]:
    return {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}
