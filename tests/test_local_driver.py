"""The file:// driver's own details, beyond the conformance suite."""

from __future__ import annotations

import os
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
