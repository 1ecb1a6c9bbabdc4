"""The file:// driver's own details, beyond the conformance suite."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cargohold import NotFoundError, UnavailableError
from cargohold.drivers import local
from cargohold.drivers.base import CREATE_ONLY, IfMatch
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


def test_a_completed_session_is_out_of_reach_before_its_file_becomes_the_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Completing moves the whole session away (under its lock) before linking its data file
    into place: a stale writer of the session, or a resume after a crash, can never reach the
    committed blob's file."""
    driver = LocalDriver(tmp_path)
    upload = driver.start_upload("blobs/k")
    part = driver.upload_part_at("blobs/k", upload, 1, 0, b"committed bytes")
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: None)  # leftovers stay around
    driver.complete_upload("blobs/k", upload, [part], precondition=CREATE_ONLY)
    with pytest.raises(NotFoundError):
        driver.upload_part_at("blobs/k", upload, 1, 0, b"STALE WRITER!!!")
    with pytest.raises(NotFoundError):
        driver.list_parts("blobs/k", upload)
    with pytest.raises(NotFoundError):
        driver.complete_upload("blobs/k", upload, [part], precondition=CREATE_ONLY)
    driver.abort_upload("blobs/k", upload)  # a no-op now
    assert driver.get("blobs/k") == b"committed bytes"


def test_a_crash_between_closing_the_session_and_publishing_loses_only_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = LocalDriver(tmp_path)
    upload = driver.start_upload("blobs/k")
    part = driver.upload_part_at("blobs/k", upload, 1, 0, b"bytes")

    def crash(*args: object) -> None:
        raise KeyboardInterrupt  # stands for the process dying here

    monkeypatch.setattr(os, "link", crash)
    with pytest.raises(KeyboardInterrupt):
        driver.complete_upload("blobs/k", upload, [part], precondition=CREATE_ONLY)
    monkeypatch.undo()
    with pytest.raises(NotFoundError):
        driver.get("blobs/k")
    with pytest.raises(NotFoundError):  # a resume finds no session and starts from zero
        driver.list_parts("blobs/k", upload)


def test_finished_ingestions_leave_no_folders_or_lock_files(tmp_path: Path) -> None:
    """Committed, aborted and closed-then-committed ingestions leave nothing behind on disk."""
    import hashlib

    import cargohold

    root = tmp_path / "store"
    with cargohold.open_store(f"file://{root}", part_size=1024) as store:
        for n in range(4):
            data = os.urandom(3000 + n)
            with store.writer(f"ref-{n}") as writer:
                writer.write(data[:1500])
            with store.writer(f"ref-{n}") as writer:
                writer.write(data[1500:])
                writer.commit(len(data), "sha256:" + hashlib.sha256(data).hexdigest())
        with store.writer("aborted") as writer:
            writer.write(b"x" * 5000)
        store.abort("aborted")
        store.update(cargohold.Info(next(store.walk()).digest, 0, *_now2(), {"k": "v"}), "labels")
    assert not (root / "ingest").exists() or not any((root / "ingest").iterdir())
    assert list((root / ".cargohold" / "locks").iterdir()) == []
    assert list((root / ".cargohold" / "uploads").iterdir()) == []
    assert list((root / ".cargohold" / "tmp").iterdir()) == []


def _now2() -> tuple[object, object]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return now, now


def test_a_held_key_lock_is_waited_for_within_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conditional write waits for another writer's lock of the same key, but not forever:
    a lock never let go (a stuck process) fails the write with UnavailableError."""
    driver = LocalDriver(tmp_path)
    etag = driver.put("k", b"one")
    driver.put("k", b"one", precondition=IfMatch(etag))  # the key's lock file exists now
    path = driver._locks / hashlib.sha256(b"k").hexdigest()
    monkeypatch.setattr(local, "KEY_LOCK_SECONDS", 0.3)
    with open(path, "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="held its lock"):
            driver.put("k", b"two", precondition=IfMatch(driver.head("k").etag))
        assert time.monotonic() - started < 5
        # Let go while a writer waits: it goes on.
        monkeypatch.setattr(local, "KEY_LOCK_SECONDS", 30.0)
        releaser = threading.Timer(0.1, lambda: fcntl.flock(held.fileno(), fcntl.LOCK_UN))
        releaser.start()
        driver.put("k", b"three", precondition=IfMatch(driver.head("k").etag))
        releaser.join()
    assert driver.get("k") == b"three"


def test_a_folder_pruned_while_it_is_made_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer's clean-up may remove a folder that ``mkdir(parents=True)`` has just
    made, before it makes the next one down (FileNotFoundError): the put makes them again."""
    driver = LocalDriver(tmp_path)
    real_mkdir = Path.mkdir
    pruned: list[Path] = []

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.name == "leaf" and not pruned:
            pruned.append(self)
            raise FileNotFoundError(2, "a parent was pruned meanwhile", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    driver.put("a/b/leaf/key", b"data", precondition=CREATE_ONLY)
    assert pruned and driver.get("a/b/leaf/key") == b"data"
