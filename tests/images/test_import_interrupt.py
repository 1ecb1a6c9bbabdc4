"""Ctrl-C and SIGKILL in the middle of ``cargohold import``, which writes several blobs at once,
then the same command again: the interrupted run names the image only if all of it is stored,
and the rerun stores every blob with the right bytes and names the image.

The store is file:// with small parts (every layer crosses several part uploads and checkpoints)
and a short lease. Moments are picked by a seeded generator (``CARGOHOLD_INTERRUPT_SEED``)
after the first ingestion of the run appears.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cargohold
from cargohold.errors import NotFoundError
from cargohold.helpers import read_blob
from tests.plugin.oci import build_image

pytestmark = pytest.mark.multiprocess

SEED = int(os.environ.get("CARGOHOLD_INTERRUPT_SEED", "1203"))
NAME = "localhost/interrupted:1"
STOP_DEADLINE = 60.0  # SIGINT: running blobs get up to 30 s to end, then the process exits


def _command(url: str, archive: Path) -> list[str]:
    return [sys.executable, "-m", "cargohold", "--store", url, "import", str(archive)]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CARGOHOLD_STORE"}


def _first_ingestion(root: Path, proc: subprocess.Popen[bytes]) -> None:
    """Until some blob's ingestion exists in the store (or the command ended, or 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        ingest = root / "ingest"
        if ingest.is_dir() and any(ingest.iterdir()):
            return
        time.sleep(0.005)


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_import_then_rerun(tmp_path: Path, how: str) -> None:
    rng = random.Random(f"{SEED}-{how}")
    image = build_image(NAME, [3 * 1024 * 1024 + 1000 * i for i in range(8)], seed=11)
    archive = tmp_path / "image.tar"
    archive.write_bytes(image.tar)
    interrupted = 0
    for run in range(3):
        root = tmp_path / f"store-{run}"
        url = f"file://{root}?part_size=262144&lease_timeout=2"
        proc = subprocess.Popen(
            _command(url, archive), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
        )
        _first_ingestion(root, proc)
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGINT if how == "SIGINT" else signal.SIGKILL)
        try:
            _out, err = proc.communicate(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"import did not stop after {how}") from None
        stderr = err.decode(errors="replace")
        interrupted += proc.returncode != 0
        if how == "SIGINT":
            # Finished before the signal (0), or stopped with the resume hint (130).
            assert proc.returncode in (0, 130), stderr
            assert "Traceback" not in stderr, stderr
            if proc.returncode == 130:
                assert "resume" in stderr, stderr
        with cargohold.open_store(url) as store:
            # A name never points at missing content: either the run was stopped before it
            # named the image, or every blob was in when it did (the signal came later).
            try:
                store.names.get(NAME)
            except NotFoundError:
                pass
            else:
                for digest in image.blobs:
                    store.info(digest)
        again = subprocess.run(
            _command(url, archive), capture_output=True, text=True, timeout=300, env=_env()
        )
        assert again.returncode == 0, again.stderr
        with cargohold.open_store(url) as store:
            assert store.names.get(NAME).target.digest == image.manifest_digest
            for digest, data in image.blobs.items():
                sink = _Sink()
                read_blob(store, digest, sink)
                assert sink.digest() == digest and sink.size == len(data)
    assert interrupted, "every run finished before the signal: nothing was interrupted"


class _Sink:
    """Hashes what is written to it."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
