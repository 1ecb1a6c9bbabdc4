"""The image graph: which blobs a manifest or index points at, and the labels that say so.

Nodes with children are OCI image manifests and indexes (v1) and Docker schema2 manifests and
manifest lists. A manifest's children are its config and layers (and its ``subject``, if any);
an index's are its manifests (and ``subject``). Anything else is a leaf.

Garbage-collection labels follow containerd's scheme (``images.SetChildrenMappedLabels`` with
``images.ChildGCLabels``), so a store read by containerd keeps an image's content alive the
way containerd's own pull would:

* a config child: ``containerd.io/gc.ref.content.config``
* a manifest child (of an index): ``containerd.io/gc.ref.content.m.<i>``
* a layer child: ``containerd.io/gc.ref.content.l.<i>``
* anything else: ``containerd.io/gc.ref.content.<i>``
* a child descriptor annotated ``io.containerd.manifest.subject`` (a referrer listed in an
  index): ``containerd.io/gc.ref.content.referrer.sha256.<first 12 hex of its digest>``

``<i>`` counts from 0 per prefix, in the order the children appear. Like containerd's
``images.Children``, the labels cover config + layers and an index's manifests, not a
manifest's ``subject``: a referrer does not keep the image it refers to alive.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..blob_reader import open_blob
from ..errors import InvalidArgumentError
from ..names import descriptor_from_json
from ..types import Descriptor

if TYPE_CHECKING:
    from ..store import Store

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_LAYER_GZIP",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "GC_LABEL_PREFIX",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "children",
    "gc_labels",
    "is_graph_type",
    "label_children",
    "media_type_of",
    "read_node",
    "walk",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})

GC_LABEL_PREFIX = "containerd.io/gc.ref.content"
_ANNOTATION_SUBJECT = "io.containerd.manifest.subject"
_KNOWN_CONFIGS = frozenset(
    {
        OCI_CONFIG,
        DOCKER_CONFIG,
        "application/vnd.containerd.container.criu.checkpoint.criu.tar",
        "application/vnd.containerd.container.checkpoint.config.v1+proto",
    }
)
_DOCKER_LAYERS = frozenset(
    {
        DOCKER_LAYER,
        DOCKER_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.foreign.diff.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar.zstd",
        "application/vnd.erofs",
    }
)
_MAX_NODE_BYTES = 4 * 1024 * 1024
"""The largest manifest or index read into memory (registries cap manifests at 4 MiB)."""


def is_graph_type(media_type: str) -> bool:
    """Whether blobs of this media type have children (manifests and indexes)."""
    return media_type in MANIFEST_TYPES or media_type in INDEX_TYPES


def _is_layer(media_type: str) -> bool:
    if media_type.startswith("application/vnd.oci.image.layer."):
        return True
    return media_type.split("+", 1)[0] in _DOCKER_LAYERS or media_type in _DOCKER_LAYERS


def _parse(media_type: str, data: bytes) -> dict[str, Any] | None:
    """The JSON object of a graph node, or None when ``media_type`` names no graph type
    (an empty media type is taken from the JSON's own ``mediaType``)."""
    if media_type and not is_graph_type(media_type):
        return None
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        if not media_type:
            return None
        raise InvalidArgumentError(f"malformed {media_type}: {exc}") from exc
    if not isinstance(doc, dict):
        if not media_type:
            return None
        raise InvalidArgumentError(f"malformed {media_type}: not a JSON object")
    own = doc.get("mediaType")
    if not media_type:
        if not isinstance(own, str) or not is_graph_type(own):
            return None
        doc["mediaType"] = own
    else:
        doc["mediaType"] = media_type
    return doc


def media_type_of(media_type: str, data: bytes) -> str:
    """``media_type``, or when empty the graph media type the JSON names itself ("" if none)."""
    if media_type:
        return media_type
    doc = _parse("", data)
    return "" if doc is None else str(doc["mediaType"])


def _descriptors(doc: Mapping[str, Any], field: str, kind: str) -> list[Descriptor]:
    raw = doc.get(field)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidArgumentError(f"malformed {kind}: {field} is not a list")
    return [descriptor_from_json(item, f"{kind} {field}[{i}]") for i, item in enumerate(raw)]


def _own_children(doc: Mapping[str, Any]) -> list[Descriptor]:
    """Children as containerd's ``images.Children`` sees them: config + layers, or manifests."""
    kind = doc["mediaType"]
    if kind in MANIFEST_TYPES:
        if "config" not in doc:
            raise InvalidArgumentError(f"malformed {kind}: no config")
        config = descriptor_from_json(doc["config"], f"{kind} config")
        return [config, *_descriptors(doc, "layers", kind)]
    if "manifests" not in doc:
        raise InvalidArgumentError(f"malformed {kind}: no manifests")
    return _descriptors(doc, "manifests", kind)


def children(media_type: str, data: bytes) -> list[Descriptor]:
    """The descriptors a manifest or index points at: config, layers, manifests, subject.

    ``[]`` for any other media type; InvalidArgumentError when a graph media type's JSON is
    malformed. An empty ``media_type`` is taken from the JSON's own ``mediaType``.
    """
    doc = _parse(media_type, data)
    if doc is None:
        return []
    found = _own_children(doc)
    if doc.get("subject") is not None:
        found.append(descriptor_from_json(doc["subject"], f"{doc['mediaType']} subject"))
    return found


def _label_keys(child: Descriptor) -> str:
    if _ANNOTATION_SUBJECT in (child.annotations or {}):
        return f"{GC_LABEL_PREFIX}.referrer.sha256."
    if child.media_type in _KNOWN_CONFIGS:
        return f"{GC_LABEL_PREFIX}.config"
    if child.media_type in MANIFEST_TYPES:
        return f"{GC_LABEL_PREFIX}.m."
    if _is_layer(child.media_type):
        return f"{GC_LABEL_PREFIX}.l."
    return f"{GC_LABEL_PREFIX}."


def gc_labels(media_type: str, data: bytes) -> dict[str, str]:
    """The ``containerd.io/gc.ref.content.*`` labels containerd sets on this node for its
    children (``{}`` for a leaf). See the module docstring for the scheme."""
    doc = _parse(media_type, data)
    if doc is None:
        return {}
    labels: dict[str, str] = {}
    counts: dict[str, int] = {}
    for child in _own_children(doc):
        key = _label_keys(child)
        index = counts.get(key, 0)
        counts[key] = index + 1
        if key.endswith(".sha256."):
            key += child.digest.partition(":")[2][:12]
        elif index > 0 or key.endswith("."):
            key = f"{key}{index}"
        labels[key] = child.digest
    return labels


def label_children(labels: Mapping[str, str]) -> list[str]:
    """The digests named by ``containerd.io/gc.ref.content*`` labels, in label-key order,
    each once."""
    found: dict[str, None] = {}
    for key in sorted(labels):
        if key == GC_LABEL_PREFIX or key.startswith(f"{GC_LABEL_PREFIX}."):
            found.setdefault(labels[key], None)
    return list(found)


def read_node(store: Store, desc: Descriptor) -> bytes:
    """The bytes of a manifest or index (digest-checked; at most 4 MiB)."""
    with open_blob(store, desc.digest) as reader:
        if reader.size > _MAX_NODE_BYTES:
            raise InvalidArgumentError(
                f"{desc.digest} is {reader.size} bytes: too large for a manifest or index"
            )
        data = reader.read(reader.size + 1) if reader.size else b""
        while len(data) < reader.size:
            more = reader.read(reader.size - len(data))
            if not more:
                break
            data += more
    return data


def walk(store: Store, root: Descriptor) -> Iterator[Descriptor]:
    """Every descriptor reachable from ``root`` (root first, then breadth-first, each digest
    once). Manifests and indexes are read from ``store`` (NotFoundError if one is missing);
    leaves are not read. A descriptor with an empty media type is read to find its own."""
    seen: set[str] = set()
    queue: deque[Descriptor] = deque([root])
    while queue:
        desc = queue.popleft()
        if desc.digest in seen:
            continue
        seen.add(desc.digest)
        yield desc
        if desc.media_type and not is_graph_type(desc.media_type):
            continue
        data = read_node(store, desc) if desc.media_type or desc.size <= _MAX_NODE_BYTES else b""
        queue.extend(children(desc.media_type, data))
