"""The Go tools the benchmarks use build offline and read correctly.

``benchmarks/goread`` (containerd's proxy client, one ``ReadAt`` per piece, digest checked) reads
a blob from ``cargohold serve`` and from ``benchmarks/gofloor`` (containerd's own content service
on a local directory, the floor the pull benchmark compares against). A broken tool would make
those benchmarks fail or, worse, measure something else; this keeps them honest, and adds one
more reader of the plugin's Read path that is containerd's own code.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from cargohold import open_store
from cargohold.helpers import write_blob
from tests.emulators._process import running, unix_ready

from .gorunner import LOG_DIR, GoBuildError, go_build, serving

pytestmark = pytest.mark.multiprocess

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SIZE = 3 * 1024 * 1024 + 12_345  # not a multiple of the piece: the last read is short
PIECE = 32 * 1024


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both tools, built once for this module."""
    built = {}
    for name in ("goread", "gofloor"):
        try:
            built[name] = go_build(
                BENCHMARKS / name, tmp_path_factory.mktemp(name), name, test=False
            )
        except GoBuildError as exc:
            pytest.fail(str(exc))
    return built


def _read(goread: Path, sock: Path, digest: str, size: int) -> list[str]:
    done = subprocess.run(
        [str(goread), str(sock), digest, str(size), str(PIECE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _store(url: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open_store(url) as store:
        write_blob(store, "bench-tools", io.BytesIO(data), expected=digest)
    return digest


def test_goread_reads_from_cargohold(tools: dict[str, Path], tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    url = f"file://{tmp_path}/store"
    digest = _store(url, data)
    with serving(url, name="bench-tools-serve") as server:
        rpcs, seconds = _read(tools["goread"], server.socket, digest, SIZE)
    assert int(rpcs) == math.ceil(SIZE / PIECE)
    assert float(seconds) > 0


def _floor_read(
    tools: dict[str, Path], digest: str, data: bytes
) -> subprocess.CompletedProcess[str]:
    """goread of ``digest`` from a gofloor whose directory holds ``data`` under it (gofloor,
    like containerd's local store, does not check what it serves)."""
    with tempfile.TemporaryDirectory(prefix="chg-", dir="/tmp") as d:  # sun_path limit
        root = Path(d) / "root"
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        sock = Path(d) / "content.sock"
        argv = [str(tools["gofloor"]), str(sock), str(root)]
        with running(argv, unix_ready(sock), name="bench-tools-gofloor", log_dir=LOG_DIR):
            return subprocess.run(
                [str(tools["goread"]), str(sock), digest, str(len(data)), str(PIECE)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )


def test_gofloor_serves_its_directory(tools: dict[str, Path]) -> None:
    data = os.urandom(SIZE)
    done = _floor_read(tools, "sha256:" + hashlib.sha256(data).hexdigest(), data)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[0]) == math.ceil(SIZE / PIECE)


def test_goread_detects_wrong_bytes(tools: dict[str, Path]) -> None:
    data = os.urandom(SIZE)
    claimed = "sha256:" + hashlib.sha256(data[:-1] + b"x").hexdigest()
    done = _floor_read(tools, claimed, data)
    assert done.returncode == 1
    assert f"want {claimed}" in done.stderr
