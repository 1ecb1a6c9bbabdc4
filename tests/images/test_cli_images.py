"""``cargohold import``, ``images``, ``images rm`` and ``export`` as a user runs them (a real
process each), with skopeo reading what export wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images.imagekit import BuiltImage, build_oci_layout, sha256, skopeo


def run(store: str, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """``python -m cargohold --store STORE ARGS``; asserts the exit status."""
    done = subprocess.run(
        [sys.executable, "-m", "cargohold", "--store", store, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "CARGOHOLD_STORE"},
    )
    assert done.returncode == code, done.stderr
    return done


@pytest.fixture
def image(tmp_path: Path) -> BuiltImage:
    return build_oci_layout(tmp_path / "layout", tag="1.0")


@pytest.fixture(params=["file", "s3"])
def store_url(request: pytest.FixtureRequest) -> str:
    fixture = {"file": "file_store_url", "s3": "s3_store_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    return url


def test_import_list_export_remove(store_url: str, image: BuiltImage, tmp_path: Path) -> None:
    archive = tmp_path / "docker.tar"
    skopeo("copy", f"oci:{image.path}:1.0", f"docker-archive:{archive}:localhost/app:1.0")
    done = run(
        store_url, "import", str(image.path), "--name", "localhost/app:oci", "--concurrency", "2"
    )
    assert image.manifest_digest in done.stdout
    assert f"imported {len(image.blobs)} blobs" in done.stdout
    done = run(store_url, "--json", "import", str(archive))
    summary = json.loads(done.stdout)
    assert summary["format"] == "docker-archive"
    assert summary["images"][0]["names"] == ["localhost/app:1.0"]
    assert summary["blobs_imported"] == len(image.layers) + 1  # the config is already stored
    assert summary["blobs_skipped"] == 1

    listed = json.loads(run(store_url, "images", "--json").stdout)
    assert [i["name"] for i in listed] == ["1.0", "localhost/app:1.0", "localhost/app:oci"]
    by_name = {i["name"]: i for i in listed}
    assert by_name["localhost/app:oci"]["digest"] == image.manifest_digest
    assert by_name["localhost/app:oci"]["size"] == len(image.manifest)
    assert (
        by_name["localhost/app:oci"]["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    )
    table = run(store_url, "images").stdout.splitlines()
    assert table[0].split() == ["NAME", "DIGEST", "MEDIA", "TYPE", "SIZE"]
    assert len(table) == 4

    out = tmp_path / "export.tar"
    done = run(store_url, "export", "localhost/app:oci", "localhost/app:1.0", str(out))
    assert "exported 2 images" in done.stdout
    raw = skopeo("inspect", "--raw", f"oci-archive:{out}:localhost/app:oci")
    assert json.loads(raw) == json.loads(image.manifest)

    assert run(store_url, "images", "rm", "1.0", "localhost/app:oci").stdout.split() == [
        "1.0",
        "localhost/app:oci",
    ]
    listed = json.loads(run(store_url, "--json", "images").stdout)
    assert [i["name"] for i in listed] == ["localhost/app:1.0"]


def test_failures(store_url: str, image: BuiltImage, tmp_path: Path) -> None:
    run(store_url, "import", str(image.path), "--base-name", "localhost/app")
    done = run(store_url, "images", "rm", "localhost/app:1.0", "nope:1", code=1)
    assert "not found" in done.stderr and "cargohold images" in done.stderr
    assert "localhost/app:1.0" in run(store_url, "images").stdout  # nothing removed
    done = run(store_url, "--json", "export", "nope:1", str(tmp_path / "x.tar"), code=1)
    error = json.loads(done.stderr)["error"]
    assert error["kind"] == "not found" and error["exit_code"] == 1
    done = run(store_url, "import", str(image.path), "--concurrency", "0", code=2)
    assert "--concurrency" in done.stderr
    done = run(store_url, "import", str(image.path), "--name", "Bad:Name", code=2)
    assert "invalid image name" in done.stderr
    run(store_url, "export", "localhost/app:1.0", code=2)
    run(store_url, "export", "localhost/app:1.0", str(tmp_path / "out.tar"))
    done = run(store_url, "export", "localhost/app:1.0", str(tmp_path / "layout"), code=1)
    assert "already exists" in done.stderr and "new path" in done.stderr
    broken = tmp_path / "broken"
    shutil.copytree(image.path, broken)
    (broken / "blobs" / "sha256" / sha256(image.layers[0])[7:]).unlink()
    done = run(store_url, "import", str(broken), "--name", "app:broken", code=1)
    assert "failed precondition" in done.stderr and "incomplete or damaged" in done.stderr
    (tmp_path / "junk").write_bytes(b"junk")
    done = run(store_url, "import", str(tmp_path / "junk"), code=2)
    assert "tar" in done.stderr
