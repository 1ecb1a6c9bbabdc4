"""LocalStack's S3 in host mode (its own virtualenv, no Docker) as the ``s3-localstack`` kind.

The server comes from ``.tools/localstack-venv`` (``.ci/install/localstack.sh``), started by
``localstack/start.sh``. ``CARGOHOLD_TEST_LOCALSTACK_ENDPOINT`` reuses a running one. Each test
gets its own bucket (LocalStack has no cheap global reset).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._process import free_port, http_ready, running
from .moto import LOG_DIR, S3Endpoint, set_credentials

STORE_KINDS = {"s3-localstack": "s3_localstack_store_url"}

REPO = Path(__file__).resolve().parents[2]
START = REPO / "localstack" / "start.sh"
VENV = REPO / ".tools" / "localstack-venv"


@pytest.fixture(scope="session")
def localstack_endpoint() -> Iterator[S3Endpoint]:
    """LocalStack S3 for the whole session (or CARGOHOLD_TEST_LOCALSTACK_ENDPOINT)."""
    external = os.environ.get("CARGOHOLD_TEST_LOCALSTACK_ENDPOINT")
    if external:
        yield S3Endpoint(external, owned=False, reset_path=None)
        return
    if not (VENV / "bin" / "python").exists():
        raise RuntimeError(f"LocalStack is not installed in {VENV}; run .ci/install/localstack.sh")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        tempfile.TemporaryDirectory(prefix="cargohold-localstack-") as data_dir,
        running(
            ["bash", str(START), str(port), data_dir],
            http_ready(url + "/_localstack/health"),
            name=f"localstack-{port}",
            log_dir=LOG_DIR,
            timeout=120,
        ),
    ):
        yield S3Endpoint(url, owned=True, reset_path=None)


@pytest.fixture
def s3_localstack_store_url(
    localstack_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> str:
    """URL of a fresh, empty store in a new LocalStack bucket."""
    set_credentials(monkeypatch)
    return localstack_endpoint.store_url(localstack_endpoint.new_bucket())
