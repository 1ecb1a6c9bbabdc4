"""Reading a docker-archive (``docker save``, ``skopeo copy ... docker-archive:``) into an
``ImportPlan``.

A docker-archive has no manifest of the distribution kind, only ``manifest.json``: a list of
``{"Config": path, "RepoTags": [...], "Layers": [path, ...]}``, where the paths are the legacy
``<id>/layer.tar`` folders, ``<hex>.json``/``<hex>.tar`` files, or (newer Docker)
``blobs/sha256/<hex>``. The importer turns each entry into a normal image: the config blob, the
layer blobs as they are in the archive, and a manifest built for them.

The manifest built is an OCI image manifest (``application/vnd.oci.image.manifest.v1+json``)
with the config as ``application/vnd.oci.image.config.v1+json`` (a Docker image config is a
valid OCI image config: same fields) and each layer's media type from its bytes:
``application/vnd.oci.image.layer.v1.tar`` for an uncompressed tar (what docker-archives hold),
``...tar+gzip`` or ``...tar+zstd`` for a compressed one. Why OCI rather than Docker schema2
(``application/vnd.docker.image.rootfs.diff.tar``): the store's root is an OCI image layout,
and OCI tools reading it skip index entries of Docker media types (skopeo's ``oci:``
transport finds only OCI manifests and indexes by ref.name), while containerd, registries and
``docker load`` accept both; it is also what ``skopeo copy docker-archive:... oci:...`` makes
of the same archive. The layer bytes are kept as they are (no recompression), so the
config's ``rootfs.diff_ids`` still match.

Every layer is read once here to learn its digest (the archive's paths do not always carry
it) and checked against the config's ``rootfs.diff_ids`` when uncompressed; its bytes are then
streamed again by the importer, with the digest as the ingestion's expected digest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..errors import DataLossError, InvalidArgumentError
from ..names import descriptor_to_json, validate_name
from ..types import Descriptor
from . import graph
from .archive import ArchiveSource
from .plan import ImportPlan, PlannedBlob, hash_stream

__all__ = ["layer_media_type", "read_docker_archive"]

_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"


def layer_media_type(head: bytes) -> str:
    """An OCI layer media type from a layer's first bytes (gzip, zstd or a plain tar)."""
    if head.startswith(_GZIP):
        return graph.OCI_LAYER_GZIP
    if head.startswith(_ZSTD):
        return f"{graph.OCI_LAYER}+zstd"
    return graph.OCI_LAYER


def _entries(source: ArchiveSource) -> list[dict[str, Any]]:
    try:
        raw = json.loads(source.read_small("manifest.json"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"{source.path}: manifest.json is not valid JSON") from exc
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise InvalidArgumentError(f"{source.path}: manifest.json is not a list of images")
    for i, entry in enumerate(raw):
        config, layers, tags = entry.get("Config"), entry.get("Layers"), entry.get("RepoTags")
        if not isinstance(config, str) or not isinstance(layers, list):
            raise InvalidArgumentError(
                f"{source.path}: manifest.json entry {i} needs Config and Layers"
            )
        if not all(isinstance(x, str) for x in layers):
            raise InvalidArgumentError(f"{source.path}: manifest.json entry {i}: bad Layers")
        if tags is not None and (
            not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
        ):
            raise InvalidArgumentError(f"{source.path}: manifest.json entry {i}: bad RepoTags")
    return raw


def _diff_ids(config: bytes, where: str) -> list[str] | None:
    try:
        doc = json.loads(config)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"{where}: the image config is not valid JSON") from exc
    rootfs = doc.get("rootfs") if isinstance(doc, dict) else None
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if isinstance(ids, list) and all(isinstance(x, str) for x in ids):
        return ids
    return None


def read_docker_archive(source: ArchiveSource) -> ImportPlan:
    """The images of a docker-archive, each with an OCI image manifest built for it."""
    plan = ImportPlan()
    layers_seen: dict[str, Descriptor] = {}
    for i, entry in enumerate(_entries(source)):
        where = f"{source.path}: image {i}"
        config = source.read_small(entry["Config"])
        config_desc = Descriptor(
            graph.OCI_CONFIG, f"sha256:{hashlib.sha256(config).hexdigest()}", len(config)
        )
        diff_ids = _diff_ids(config, where)
        if diff_ids is not None and len(diff_ids) != len(entry["Layers"]):
            raise InvalidArgumentError(
                f"{where}: {len(entry['Layers'])} layers, but its config lists "
                f"{len(diff_ids)} diff_ids"
            )
        layers: list[Descriptor] = []
        for n, path in enumerate(entry["Layers"]):
            desc = layers_seen.get(path)
            if desc is None:
                with source.open(path) as stream:
                    digest, size, head = hash_stream(stream)
                desc = Descriptor(layer_media_type(head), digest, size)
                layers_seen[path] = desc
                plan.add_blob(PlannedBlob(desc, member=path))
            uncompressed = desc.media_type == graph.OCI_LAYER
            if diff_ids is not None and uncompressed and desc.digest != diff_ids[n]:
                raise DataLossError(
                    f"{where}: layer {path} hashes to {desc.digest}, but the config's "
                    f"diff_id {n} is {diff_ids[n]}"
                )
            layers.append(desc)
        plan.add_blob(PlannedBlob(config_desc, data=config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": graph.OCI_MANIFEST,
            "config": descriptor_to_json(config_desc),
            "layers": [descriptor_to_json(layer) for layer in layers],
        }
        data = json.dumps(manifest, indent=3).encode()
        target = Descriptor(
            graph.OCI_MANIFEST, f"sha256:{hashlib.sha256(data).hexdigest()}", len(data)
        )
        plan.add_blob(PlannedBlob(target, data=data))
        plan.add_image(target, [validate_name(tag) for tag in entry.get("RepoTags") or []])
    return plan
