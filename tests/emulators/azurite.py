"""Azurite (the Azure Storage emulator) for the ``azure`` store kind.

The session fixture starts ``azurite-blob`` from ``<repo>/.tools/azurite`` (installed by
``.ci/install/azurite.sh``; nothing is installed here) on a free loopback port with in-memory
persistence, and stops that process at the end. ``CARGOHOLD_TEST_AZURE_CONNECTION_STRING`` may
point at an Azurite (or account) that is already running instead.

Each test gets a fresh container; the connection string is put into
``AZURE_STORAGE_CONNECTION_STRING`` so that child processes open the same store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._process import free_port, http_ready, running

STORE_KINDS = {"azure": "azure_store_url"}

REPO = Path(__file__).resolve().parents[2]
AZURITE_BLOB = REPO / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
ENV_ENDPOINT = "CARGOHOLD_TEST_AZURE_CONNECTION_STRING"

# Azurite's documented, public development account (not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def dev_connection_string(port: int) -> str:
    """The connection string of Azurite's development account on ``127.0.0.1:port``."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
    )


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    """The connection string of a running Azurite (started here unless the env var names one)."""
    given = os.environ.get(ENV_ENDPOINT)
    if given:
        yield given
        return
    if not AZURITE_BLOB.exists():
        pytest.fail(
            f"Azurite is not installed at {AZURITE_BLOB}; run .ci/install/azurite.sh "
            f"(or set {ENV_ENDPOINT} to a running one)"
        )
    port = free_port()
    argv = [
        str(AZURITE_BLOB),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
        "--silent",
        # Keep idle pooled connections open across slow tests (the default closes them at 5 s).
        "--blobKeepAliveTimeout",
        "300",
    ]
    with running(
        argv,
        http_ready(f"http://127.0.0.1:{port}/{DEV_ACCOUNT}?comp=list"),
        name=f"azurite-{port}",
        log_dir=REPO / "test-logs",
        cwd=str(REPO / ".tools" / "azurite"),
    ):
        yield dev_connection_string(port)


@pytest.fixture
def azure_container(azurite_connection_string: str) -> Iterator[str]:
    """A fresh, empty container; deleted after the test."""
    from azure.storage.blob import BlobServiceClient

    name = f"t{uuid.uuid4().hex[:20]}"
    with BlobServiceClient.from_connection_string(azurite_connection_string) as service:
        service.create_container(name)
        yield name
        service.delete_container(name)


@pytest.fixture
def azure_store_url(
    azure_container: str, azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """``az://<fresh container>/store``, openable from child processes through the env."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_connection_string)
    return f"az://{azure_container}/store"
