"""Small images built by hand for the image tests, and the real skopeo to convert them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def layer_tar(seed: int, size: int = 64 * 1024) -> bytes:
    """An uncompressed layer: one file of random bytes."""
    payload = os.urandom(size) + str(seed).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"data/file-{seed}.bin")
        info.size = len(payload)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
    return out.getvalue()


@dataclass
class BuiltImage:
    """An OCI layout on disk with one image."""

    path: Path
    tag: str
    manifest: bytes
    config: bytes
    layers: list[bytes]
    diff_ids: list[str]

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        found = {sha256(self.manifest): self.manifest, sha256(self.config): self.config}
        found.update({sha256(layer): layer for layer in self.layers})
        return found


def _put_blob(root: Path, data: bytes) -> dict[str, object]:
    digest = sha256(data)
    target = root / "blobs" / "sha256" / digest.split(":")[1]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def build_oci_layout(root: Path, *, tag: str = "1.0", layers: int = 2) -> BuiltImage:
    """An OCI image layout with one image (random gzipped layers, a config, a manifest)
    named ``tag`` (its ref.name)."""
    root.mkdir(parents=True, exist_ok=True)
    raw = [layer_tar(i) for i in range(layers)]
    compressed = [gzip.compress(r, mtime=0) for r in raw]
    diff_ids = [sha256(r) for r in raw]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **_put_blob(root, config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, **_put_blob(root, c)} for c in compressed],
        }
    ).encode()
    entry = {"mediaType": OCI_MANIFEST, **_put_blob(root, manifest)}
    entry["annotations"] = {REF_NAME: tag}
    index = {"schemaVersion": 2, "manifests": [entry]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return BuiltImage(root, tag, manifest, config, compressed, diff_ids)


def skopeo_bin() -> str:
    """The skopeo binary; a missing skopeo fails the test (see .ci/install/skopeo.sh)."""
    found = shutil.which("skopeo")
    assert found, "skopeo is not installed: run .ci/install/skopeo.sh"
    return found


def skopeo(*args: str, timeout: float = 120) -> str:
    """Run skopeo (no signature policy checks: local files only); return its stdout."""
    done = subprocess.run(
        [skopeo_bin(), "--insecure-policy", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"skopeo {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def skopeo_inspect(ref: str) -> dict[str, object]:
    """``skopeo inspect --raw`` of a transport reference: the manifest skopeo finds."""
    raw: dict[str, object] = json.loads(skopeo("inspect", "--raw", ref))
    return raw
