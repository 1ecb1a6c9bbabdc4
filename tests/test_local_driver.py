"""The file:// driver's own details, beyond the conformance suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cargohold.drivers import local
from cargohold.drivers.local import LocalDriver


def test_large_writes_go_down_in_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write is split into pieces of at most _WRITE_PIECE bytes, at the right offsets."""
    monkeypatch.setattr(local, "_WRITE_PIECE", 7)
    sizes: list[int] = []
    real_pwrite = os.pwrite

    def pwrite(fd: int, data: memoryview, offset: int) -> int:
        sizes.append(len(data))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    driver = LocalDriver(tmp_path)
    whole = bytes(range(256)) * 3
    driver.put("k/put", whole)
    assert driver.get("k/put") == whole
    assert sizes and max(sizes) <= 7 and sum(sizes) == len(whole)

    sizes.clear()
    upload = driver.start_upload("k/mpu")
    first = driver.upload_part_at("k/mpu", upload, 1, 0, whole[:500])
    second = driver.upload_part_at("k/mpu", upload, 2, 500, whole[500:])
    driver.complete_upload("k/mpu", upload, [first, second])
    assert driver.get("k/mpu") == whole
    assert max(sizes) <= 7 and sum(sizes) >= len(whole)


def test_a_stale_part_write_after_completion_never_reaches_the_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Completing create-only links the session's data file into place; the session must not
    keep that file, or a stale writer of the session could still write into the blob."""
    driver = LocalDriver(tmp_path)
    upload = driver.start_upload("blobs/k")
    part = driver.upload_part_at("blobs/k", upload, 1, 0, b"committed bytes")
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: None)  # as if not yet removed
    driver.complete_upload("blobs/k", upload, [part], if_none_match=True)
    driver.upload_part_at("blobs/k", upload, 1, 0, b"STALE WRITER!!!")
    assert driver.get("blobs/k") == b"committed bytes"
