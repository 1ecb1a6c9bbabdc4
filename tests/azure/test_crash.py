"""A writer process killed with SIGKILL mid-upload, resumed from this process on Azurite.

Checks what is Azure-specific: the dead writer's staged blocks stay invisible under the digest
key, and the resumed writer reuses the blocks its checkpoints recorded instead of staging
every part again.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cargohold
from cargohold import Descriptor, Store
from cargohold.digests import parse_digest

from .conftest import RequestCounter

ROOT = Path(__file__).resolve().parents[2]
LEASE = 3.0
PART = 256 * 1024


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.fixture
def child(azure_store_url: str) -> Iterator[subprocess.Popen[str]]:
    """A store client in another process (the conformance suite's JSON-lines child)."""
    options = json.dumps({"part_size": PART, "lease_timeout": LEASE})
    proc = subprocess.Popen(
        [sys.executable, "-m", "cargohold.testing.conformance._child", azure_store_url, options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def _ask(proc: subprocess.Popen[str], **cmd: object) -> object:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(cmd) + "\n")
    proc.stdin.flush()
    reply = json.loads(proc.stdout.readline())
    assert "ok" in reply, reply
    return reply["ok"]


def test_sigkilled_writer_resumes_elsewhere_reusing_staged_blocks(
    azure_store_url: str,
    child: subprocess.Popen[str],
    tmp_path: Path,
    request_counter: RequestCounter,
) -> None:
    data = hashlib.shake_256(b"crash").digest(12 * PART + 7)
    digest = _digest(data)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    _ask(child, op="open", ref="crash", digest=digest, size=len(data))
    # Slow writes so that checkpoints (every lease / 3 s) record some parts.
    _ask(child, op="write", path=str(path), start=0, end=8 * PART, step=PART // 2, pause=0.25)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    store: Store = cargohold.open_store(azure_store_url, part_size=PART, lease_timeout=LEASE)
    try:
        blob_key = store.layout.blob_key(parse_digest(digest))
        with pytest.raises(cargohold.NotFoundError):
            store.info(digest)
        staged = store.driver.list_uploads(blob_key)
        assert [u.key for u in staged] == [blob_key]
        time.sleep(LEASE + 0.5)
        request_counter.reset()
        with store.writer("crash", Descriptor(digest=digest, size=len(data))) as writer:
            offset = writer.status().offset
            assert PART <= offset <= 8 * PART
            assert writer.digest() == _digest(data[:offset])
            writer.write(data[offset:])
            writer.commit(len(data), digest)
        stages = sum(
            "comp=block&" in q or q.endswith("comp=block") for q in request_counter.queries
        )
        # Only the parts after the resume point are staged again (the last one may be short).
        assert stages <= (len(data) - offset) // PART + 2
        with store.reader_at(digest) as reader:
            assert reader.read_at(0, len(data)) == data
        assert list(store.driver.list_uploads(blob_key)) == []
    finally:
        store.close()
