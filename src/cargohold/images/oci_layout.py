"""Reading an OCI image layout (a directory, or a tar of one) into an ``ImportPlan``.

The layout's ``index.json`` lists the images; every blob they reach is looked up under
``blobs/<alg>/<hex>``. Manifests and indexes are read (and their digests checked) here, to
find their children; other blobs are only checked to be present, and streamed at import.

Names come from each ``index.json`` entry (see ``entry_names``): containerd's
``io.containerd.image.name`` when present, else ``org.opencontainers.image.ref.name``. A
ref.name that is a whole reference (it has a ``/``, ``:`` or ``@``) is the name as it is; a bare
tag (``latest``, what ``skopeo copy ... oci:DIR:latest`` writes) becomes ``<base_name>:<tag>``
when a base name is given, and the tag alone otherwise, which the reference grammar reads as a
repository name, so ``--name`` or ``--base-name`` is how to give such an image a proper name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..digests import parse_digest
from ..errors import DataLossError, FailedPreconditionError, InvalidArgumentError
from ..names import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, descriptor_from_json, validate_name
from ..types import Descriptor
from . import graph
from .archive import ArchiveSource
from .plan import ImportPlan, PlannedBlob

__all__ = ["blob_path", "entry_names", "read_oci_layout"]


def blob_path(digest: str) -> str:
    """Where a layout keeps a blob: ``blobs/<alg>/<hex>``."""
    parsed = parse_digest(digest)
    return f"blobs/{parsed.algorithm}/{parsed.hex}"


def entry_names(annotations: Mapping[str, str] | None, base_name: str | None) -> list[str]:
    """The image name an ``index.json`` entry carries (empty list when it carries none)."""
    annotations = annotations or {}
    full = annotations.get(ANNOTATION_IMAGE_NAME)
    if full:
        return [validate_name(full)]
    ref = annotations.get(ANNOTATION_REF_NAME)
    if not ref:
        return []
    if base_name and not any(c in ref for c in "/:@"):
        return [validate_name(f"{base_name}:{ref}")]
    try:
        return [validate_name(ref)]
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(
            f"{exc}; the archive's ref.name {ref!r} is not an image name: give --base-name "
            "(for a tag) or --name"
        ) from exc


def _load_json(source: ArchiveSource, name: str) -> Any:
    try:
        return json.loads(source.read_small(name))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"{source.path}: {name} is not valid JSON: {exc}") from exc


def _read_node(source: ArchiveSource, desc: Descriptor, parent: str) -> bytes:
    path = blob_path(desc.digest)
    if not source.has(path):
        raise FailedPreconditionError(
            f"{source.path}: {parent} refers to {desc.digest}, which the layout lacks"
        )
    data = source.read_small(path)
    parsed = parse_digest(desc.digest)
    actual = f"{parsed.algorithm}:{hashlib.new(parsed.algorithm, data).hexdigest()}"
    if actual != str(parsed) or len(data) != desc.size:
        raise DataLossError(
            f"{source.path}: {path} holds {len(data)} bytes of {actual}, not "
            f"{desc.size} bytes of {desc.digest}"
        )
    return data


def _plan_node(
    source: ArchiveSource, plan: ImportPlan, desc: Descriptor, parent: str, depth: int = 0
) -> Descriptor:
    """Plan ``desc`` and everything below it, children first (a depth-first post-order);
    return ``desc`` with its media type filled in from its JSON when it had none."""
    if depth > 16:
        raise InvalidArgumentError(f"{source.path}: the image graph is nested too deeply")
    if plan.has_blob(desc.digest):
        return desc
    kind = desc.media_type
    if kind and not graph.is_graph_type(kind):
        path = blob_path(desc.digest)
        if not source.has(path):
            raise FailedPreconditionError(
                f"{source.path}: {parent} refers to {desc.digest}, which the layout lacks"
            )
        if source.size(path) != desc.size:
            raise DataLossError(
                f"{source.path}: {path} has {source.size(path)} bytes, not {desc.size}"
            )
        plan.add_blob(PlannedBlob(desc, member=path))
        return desc
    data = _read_node(source, desc, parent)
    kind = graph.media_type_of(kind, data)
    for child in graph.children(kind, data):
        _plan_node(source, plan, child, desc.digest, depth + 1)
    desc = Descriptor(kind, desc.digest, desc.size, desc.annotations)
    plan.add_blob(PlannedBlob(desc, data=data))
    return desc


def read_oci_layout(source: ArchiveSource, *, base_name: str | None = None) -> ImportPlan:
    """The images of an OCI layout, their names and blobs."""
    if not source.has("index.json"):
        raise InvalidArgumentError(f"{source.path} is not an OCI image layout (no index.json)")
    if source.has("oci-layout"):
        marker = _load_json(source, "oci-layout")
        if not isinstance(marker, dict) or not isinstance(marker.get("imageLayoutVersion"), str):
            raise InvalidArgumentError(f"{source.path}: oci-layout has no imageLayoutVersion")
    index = _load_json(source, "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise InvalidArgumentError(f"{source.path}: index.json is not an OCI image index")
    plan = ImportPlan()
    for i, raw in enumerate(index["manifests"]):
        entry = descriptor_from_json(raw, f"{source.path}: index.json manifests[{i}]")
        names = entry_names(entry.annotations, base_name)
        root = _plan_node(source, plan, entry, "index.json")
        plan.add_image(Descriptor(root.media_type, root.digest, root.size), names)
    return plan
