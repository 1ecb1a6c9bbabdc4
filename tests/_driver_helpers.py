"""Checks every cloud driver's own tests share, written once.

Each driver's test module calls these with its emulator-backed driver or store, and keeps its
driver-specific checks next to the call.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cargohold import Descriptor, Store
from cargohold.drivers.base import CREATE_ONLY, Driver, IfMatch
from cargohold.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    NotFoundError,
    UnavailableError,
)


def s3_client_error(code: str, status: int, operation: str = "HeadObject") -> ClientError:
    """The ``ClientError`` botocore raises for an S3 answer with error ``code`` and ``status``."""
    meta: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(meta, operation)


def check_missing_objects(driver: Driver) -> None:
    """Reading a key that does not exist is ``NotFoundError``, an empty range included."""
    with pytest.raises(NotFoundError):
        driver.get("nope")
    with pytest.raises(NotFoundError):
        driver.head("nope")
    with pytest.raises(NotFoundError):
        driver.get_range("nope", 0, 10)
    with pytest.raises(NotFoundError):
        driver.get_range("nope", 0, 0)


def check_get_range_edges(driver: Driver) -> None:
    """Ranges past the end are cut short or empty (writes ``r`` and ``empty``)."""
    driver.put("r", b"0123456789")
    driver.put("empty", b"")
    assert driver.get_range("r", 2, 3) == b"234"
    assert driver.get_range("r", 8, 100) == b"89"
    assert driver.get_range("r", 10, 5) == b""
    assert driver.get_range("r", 50, 5) == b""
    assert driver.get_range("r", 3, 0) == b""
    assert driver.get_range("r", 0, 0) == b""
    assert driver.get_range("empty", 0, 10) == b""
    assert driver.get("empty") == b""


def check_create_only_put(driver: Driver) -> None:
    """A create-only put of a taken key is ``AlreadyExistsError`` and leaves the object alone."""
    driver.put("k", b"one", precondition=CREATE_ONLY)
    with pytest.raises(AlreadyExistsError):
        driver.put("k", b"two", precondition=CREATE_ONLY)
    assert driver.get("k") == b"one"


def check_put_if_match(driver: Driver) -> None:
    """An ``IfMatch`` put succeeds on the current etag only; a missing key is a miss too."""
    first = driver.put("k", b"one")
    second = driver.put("k", b"two", precondition=IfMatch(first))
    assert second != first
    assert driver.get("k") == b"two"
    with pytest.raises(FailedPreconditionError):
        driver.put("k", b"three", precondition=IfMatch(first))
    with pytest.raises(FailedPreconditionError):
        driver.put("missing", b"x", precondition=IfMatch(second))
    assert driver.get("k") == b"two"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def kill_writer_child(script: str, tmp_path: Path, *args: str) -> None:
    """Run ``script`` with ``args``; once it prints ``written``, SIGKILL it.

    The script runs with this process's environment (the emulator endpoints the fixtures set)
    and must stay alive after printing, holding its writer open.
    """
    path = tmp_path / "child.py"
    path.write_text(script)
    child = subprocess.Popen(
        [sys.executable, str(path), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=os.environ.copy(),
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"written"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def resume_killed_writer(store: Store, ref: str, data: bytes, *, timeout: float = 30) -> int:
    """Take over ``ref`` once the dead writer's lease expires, finish and check it.

    Returns the offset the writer resumed at (what the dead writer's checkpoints kept).
    """
    digest, size = _digest(data), len(data)
    deadline = time.monotonic() + timeout
    while True:
        try:
            writer = store.writer(ref, Descriptor(digest=digest, size=size))
            break
        except UnavailableError:
            assert time.monotonic() < deadline, "the killed writer's lease never expired"
            time.sleep(0.25)
    offset = writer.status().offset
    writer.write(data[offset:])
    writer.commit(size, digest)
    with store.reader_at(digest) as reader:
        assert reader.read_at(0, size) == data
    assert store.list_statuses() == []
    return offset
