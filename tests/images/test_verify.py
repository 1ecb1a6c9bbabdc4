"""``images.verify`` and ``cargohold verify``: damaged bytes on disk, a manifest with a missing
child, a name pointing at nothing, and a good store."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import cargohold
from cargohold.images import graph
from cargohold.images.verify import (
    CORRUPT,
    DANGLING_NAME,
    MALFORMED,
    MISSING,
    MISSING_CHILD,
    sniff_media_type,
    verify,
)
from tests.conftest import STORE_KINDS

from ._build import build_image, build_index, put_blob

KINDS = [k for k in ("file", "s3") if k in STORE_KINDS]


def _cli(store_url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CARGOHOLD_STORE": store_url}
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )


def _blob_path(store_url: str, digest: str) -> Path:
    root = Path(store_url.removeprefix("file://"))
    return root / "blobs" / "sha256" / digest.partition(":")[2]


def test_good_store_exits_0(file_store_url: str) -> None:
    with cargohold.open_store(file_store_url) as store:
        images = [build_image(store, random.Random(i)) for i in range(2)]
        build_index(store, images, name="multi:1")
        build_image(store, random.Random(9), name="single:1")
    done = _cli(file_store_url, "verify", "--all")
    assert done.returncode == 0, done.stderr.decode()
    assert "ok" in done.stderr.decode() + done.stdout.decode()
    report = json.loads(_cli(file_store_url, "verify", "--all", "--json").stdout)
    assert report["ok"] is True
    assert report["blobs_checked"] == 13  # 3 x (2 layers, config, manifest) + the index
    assert report["nodes_checked"] == 4 and report["names_checked"] == 2


def test_changed_bytes_on_disk_are_named(file_store_url: str) -> None:
    with cargohold.open_store(file_store_url) as store:
        image = build_image(store, random.Random(1), layers=(5000, 6000), name="app:1")
    layer = image.layers[1].digest
    path = _blob_path(file_store_url, layer)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))

    done = _cli(file_store_url, "verify", "--all")
    assert done.returncode == 1
    out = done.stdout.decode()
    assert f"{CORRUPT} {layer}" in out
    assert out.count("\n") == 1, out  # the damaged layer, and nothing else
    only = _cli(file_store_url, "verify", layer, image.config.digest, "--json")
    assert only.returncode == 1
    problems = json.loads(only.stdout)["problems"]
    assert [(p["digest"], p["kind"]) for p in problems] == [(layer, CORRUPT)]


@pytest.mark.parametrize("kind", KINDS)
def test_missing_child_and_dangling_name(kind: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(STORE_KINDS[kind])
    with cargohold.open_store(url) as store:
        rng = random.Random(3)
        app = build_image(store, rng, layers=(100, 200), name="app:1")
        gone = build_image(store, rng, layers=(300,), name="gone:1")
        store.delete(app.layers[0].digest)
        store.delete(gone.manifest.digest)

        report = verify(store, concurrency=2)
        found = {(p.kind, p.digest) for p in report.problems}
        assert found == {
            (MISSING_CHILD, app.manifest.digest),
            (DANGLING_NAME, gone.manifest.digest),
        }
        detail = next(p.detail for p in report.problems if p.kind == MISSING_CHILD)
        assert app.layers[0].digest in detail
        assert "gone:1" in next(p.detail for p in report.problems if p.kind == DANGLING_NAME)

        asked = verify(store, [app.manifest.digest, app.layers[0].digest])
        assert {(p.kind, p.digest) for p in asked.problems} == {
            (MISSING_CHILD, app.manifest.digest),
            (MISSING, app.layers[0].digest),
        }
        assert asked.names_checked == 0


def test_nodes_found_without_names(file_store_url: str) -> None:
    """A manifest nobody names is still checked: it is recognised by its JSON."""
    with cargohold.open_store(file_store_url) as store:
        image = build_image(store, random.Random(4))
        store.delete(image.config.digest)
        broken = put_blob(
            store, b'{"mediaType": "%s", "layers": 3}' % graph.OCI_MANIFEST.encode(), ""
        )
        report = verify(store)
        assert {(p.kind, p.digest) for p in report.problems} == {
            (MISSING_CHILD, image.manifest.digest),
            (MALFORMED, broken.digest),
        }
    done = _cli(file_store_url, "verify", "--all")
    assert done.returncode == 1
    assert image.manifest.digest in done.stdout.decode()


def test_sniff_media_type() -> None:
    assert sniff_media_type(b'{"schemaVersion": 2, "manifests": []}') == graph.OCI_INDEX
    assert sniff_media_type(b'{"mediaType": "%s"}' % graph.OCI_INDEX.encode()) == graph.OCI_INDEX
    assert sniff_media_type(b'{"mediaType": "text/plain", "manifests": []}') == ""
    assert sniff_media_type(b"\x1f\x8b binary") == ""
    assert sniff_media_type(b"[1, 2]") == ""


def test_verify_needs_digests_or_all(file_store_url: str) -> None:
    with cargohold.open_store(file_store_url) as store:
        build_image(store, random.Random(5), name="app:1")
        assert store.names.list()
    assert _cli(file_store_url, "verify").returncode == 2
    assert _cli(file_store_url, "verify", "--all", "sha256:" + "0" * 64).returncode == 2
