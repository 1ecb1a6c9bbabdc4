"""Build a small multi-layer OCI image layout as a tar, in memory, for ``ctr images import``."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, mtime=0), uncompressed


@dataclass
class Image:
    """An OCI image: its blobs by digest, and the layout tar holding them."""

    name: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifest_digest: str = ""
    tar: bytes = b""


def build_image(name: str, layer_sizes: list[int], seed: int = 0) -> Image:
    """An image named ``name`` with one layer per size (pseudo-random, so incompressible)."""
    image = Image(name)
    layers, diff_ids = [], []
    for i, size in enumerate(layer_sizes):
        payload = _noise(size, seed * 1000 + i)
        blob, uncompressed = _layer({f"layer{i}.bin": payload})
        image.blobs[_digest(blob)] = blob
        layers.append({"mediaType": MEDIA_LAYER, "digest": _digest(blob), "size": len(blob)})
        diff_ids.append(_digest(uncompressed))
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    image.blobs[_digest(config)] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": layers,
        }
    ).encode()
    image.manifest_digest = _digest(manifest)
    image.blobs[image.manifest_digest] = manifest
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [
                {
                    "mediaType": MEDIA_MANIFEST,
                    "digest": image.manifest_digest,
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {"io.containerd.image.name": name},
                }
            ],
        }
    ).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", index)
        for digest, blob in image.blobs.items():
            _add(tar, "blobs/sha256/" + digest.split(":", 1)[1], blob)
    image.tar = out.getvalue()
    return image


def read_layout(tar_bytes: bytes) -> dict[str, bytes]:
    """The blobs of an exported OCI layout tar, by digest."""
    blobs: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith("blobs/"):
                _, alg, hexpart = member.name.split("/", 2)
                extracted = tar.extractfile(member)
                assert extracted is not None
                blobs[f"{alg}:{hexpart}"] = extracted.read()
    return blobs


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def _noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)
