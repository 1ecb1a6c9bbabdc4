"""End to end: a real containerd whose content store is ``cargohold serve``.

Driven through ``ctr`` (always under a timeout). The two-host test puts two containerd daemons
and two serve processes with different node ids on one store.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import cargohold
from tests.emulators.containerd import LOG_DIR, Host

from .oci import build_image, read_layout

pytestmark = pytest.mark.multiprocess

IMAGE = "cargohold-test/tiny:1"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def store_digests(url: str) -> set[str]:
    store = cargohold.open_store(url)
    try:
        return {info.digest for info in store.walk()}
    finally:
        store.close()


def committed_digests(serve_log: Path) -> set[str]:
    """Digests a serve process logged as newly committed to the store."""
    entries = [
        json.loads(line) for line in serve_log.read_text().splitlines() if line.startswith("{")
    ]
    return {e["digest"] for e in entries if e.get("msg") == "blob committed"}


def wait_until(check: Callable[[], bool], timeout: float = 60, host: Host | None = None) -> None:
    """Poll ``check``; on timeout, fail with what containerd's GC logged (if ``host``)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            gc_lines = ""
            if host is not None:
                log = LOG_DIR / f"{host.name}.log"
                lines = log.read_text(errors="replace").splitlines() if log.exists() else []
                gc_lines = "\n".join(ln for ln in lines if "garbage" in ln or "content" in ln)
            raise AssertionError(f"condition not reached in {timeout} s\n{gc_lines[-4000:]}")
        time.sleep(0.2)


def import_image(host: Host, tar: bytes, tmp: Path) -> None:
    path = tmp / f"import-{host.name}.tar"
    path.write_bytes(tar)
    host.ctr("images", "import", "--no-unpack", "--all-platforms", str(path))


def export_image(host: Host, tmp: Path) -> dict[str, bytes]:
    path = tmp / f"export-{host.name}.tar"
    host.ctr("images", "export", str(path), IMAGE)
    return read_layout(path.read_bytes())


def test_content_commands(containerd_host: Callable[..., Host], file_store_url: str) -> None:
    host = containerd_host(file_store_url, "node-a")
    data = b"hello from containerd\n" * 5000
    digest = sha(data)

    host.ctr("content", "ingest", "--expected-digest", digest, "my-ref", input=data)
    assert digest in host.ctr("content", "ls", "-q").stdout.decode().split()
    assert host.ctr("content", "get", digest).stdout == data
    assert digest in store_digests(file_store_url)

    active = host.ctr("content", "active").stdout.decode()
    assert "my-ref" not in active  # committed: no longer an active ingestion

    host.ctr("content", "rm", digest)
    assert digest not in host.ctr("content", "ls", "-q").stdout.decode().split()
    wait_until(lambda: digest not in store_digests(file_store_url), host=host)


def opened_hints(serve_log: Path) -> dict[str, str]:
    """The hint each ingestion a serve process opened had, by containerd ref."""
    entries = [
        json.loads(line) for line in serve_log.read_text().splitlines() if line.startswith("{")
    ]
    return {e["ref"]: e["hint"] for e in entries if e.get("msg") == "ingestion opened"}


def test_image_import_export(
    containerd_host: Callable[..., Host], file_store_url: str, tmp_path: Path
) -> None:
    # Parts of 256 KiB, so that the larger layers take the multipart path under their hint.
    host = containerd_host(f"{file_store_url}?part_size=262144", "node-a")
    image = build_image(IMAGE, [200_000, 3_000_000, 50_000])
    import_image(host, image.tar, tmp_path)
    assert IMAGE in host.ctr("images", "ls", "-q").stdout.decode().split()
    # containerd's importer names each blob's digest in its ref: every one was a hint.
    assert host.serve_log is not None
    hints = opened_hints(host.serve_log)
    blob_refs = {ref: hint for ref, hint in hints.items() if "/tar-blobs/" in ref}
    assert set(blob_refs.values()) == set(image.blobs), hints

    exported = export_image(host, tmp_path)
    for digest, blob in image.blobs.items():
        assert exported[digest] == blob
    assert set(image.blobs) <= store_digests(file_store_url)


def test_two_hosts_share_one_store(
    containerd_host: Callable[..., Host], shared_plugin_store_url: str, tmp_path: Path
) -> None:
    url = shared_plugin_store_url
    host_a = containerd_host(url, "node-a")
    host_b = containerd_host(url, "node-b")
    image = build_image(IMAGE, [500_000, 2_000_000], seed=7)

    import_image(host_a, image.tar, tmp_path)
    assert set(image.blobs) <= store_digests(url)

    created = {i.digest: i.created_at for i in _walk(url) if i.digest in image.blobs}
    import_image(host_b, image.tar, tmp_path)
    # containerd's importer streams tar entries without their digest, so B's plugin sees the
    # bytes, but it finds each blob stored already and commits nothing.
    assert host_b.serve_log is not None
    assert not committed_digests(host_b.serve_log) & set(image.blobs)
    assert {i.digest: i.created_at for i in _walk(url) if i.digest in image.blobs} == created
    # With the digest known up front (as on a pull), B does not even open an ingestion.
    layer = next(d for d, b in image.blobs.items() if len(b) > 1_000_000)
    host_b.ctr(
        "content", "ingest", "--expected-digest", layer, "pull-like", input=image.blobs[layer]
    )
    assert "pull-like" not in host_b.serve_log.read_text()
    assert export_image(host_b, tmp_path).items() >= image.blobs.items()

    host_a.ctr("images", "rm", "--sync", IMAGE)
    time.sleep(1)
    assert set(image.blobs) <= store_digests(url)  # B still holds them
    assert export_image(host_b, tmp_path).items() >= image.blobs.items()

    host_b.ctr("images", "rm", "--sync", IMAGE)
    wait_until(lambda: not (set(image.blobs) & store_digests(url)), host=host_b)


def _walk(url: str) -> list[cargohold.Info]:
    store = cargohold.open_store(url)
    try:
        return list(store.walk())
    finally:
        store.close()
