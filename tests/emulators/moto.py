"""moto server (a separate process on loopback) as the ``s3`` store kind.

``CARGOHOLD_TEST_S3_ENDPOINT=http://127.0.0.1:5000`` reuses a server that is already running
(then state is never reset, every test just gets its own bucket).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._process import free_port, http_ready, running

STORE_KINDS = {"s3": "s3_store_url"}

LOG_DIR = Path(__file__).resolve().parents[2] / "test-logs"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _moto_argv(port: int) -> list[str]:
    """moto_server's arguments, run through the launcher that makes conditional writes atomic."""
    launcher = Path(__file__).with_name("_moto_atomic.py")
    # -P: the launcher's own folder must not shadow the real moto package with ./moto.py
    return [sys.executable, "-P", str(launcher), "-H", "127.0.0.1", "-p", str(port)]


class S3Endpoint:
    """A running S3-compatible endpoint and how to make buckets on it."""

    def __init__(self, url: str, *, owned: bool, reset_path: str | None) -> None:
        self.url = url.rstrip("/")
        self.owned = owned
        self.reset_path = reset_path

    def reset(self) -> None:
        """Drop every bucket, but only on a server this test session started."""
        if self.owned and self.reset_path:
            req = urllib.request.Request(self.url + self.reset_path, data=b"", method="POST")
            with urllib.request.urlopen(req, timeout=30):
                pass

    def new_bucket(self) -> str:
        """Create a fresh bucket and return its name."""
        import boto3

        name = f"cargohold-{uuid.uuid4().hex[:20]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return name

    def store_url(self, bucket: str, prefix: str = "store", **options: str) -> str:
        """An ``s3://`` URL for a store under ``bucket/prefix`` on this endpoint."""
        query = {"endpoint_url": self.url, "region": "us-east-1", "addressing_style": "path"}
        query.update(options)
        return f"s3://{bucket}/{prefix}?" + "&".join(f"{k}={v}" for k, v in query.items())


def set_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials in os.environ, so child processes find them through boto3's chain."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[S3Endpoint]:
    """A moto server for the whole session (or the one named by CARGOHOLD_TEST_S3_ENDPOINT)."""
    external = os.environ.get("CARGOHOLD_TEST_S3_ENDPOINT")
    if external:
        yield S3Endpoint(external, owned=False, reset_path=None)
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        _moto_argv(port),
        http_ready(url + "/moto-api/data.json"),
        name=f"moto-{port}",
        log_dir=LOG_DIR,
        env={"MOTO_ALLOW_NONEXISTENT_REGION": "1"},
    ):
        yield S3Endpoint(url, owned=True, reset_path="/moto-api/reset")


@pytest.fixture
def s3_bucket(moto_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on the moto server (server state reset first when we own it)."""
    set_credentials(monkeypatch)
    moto_endpoint.reset()
    return moto_endpoint.new_bucket()


@pytest.fixture
def s3_store_url(moto_endpoint: S3Endpoint, s3_bucket: str) -> str:
    """URL of a fresh, empty store on the moto server."""
    return moto_endpoint.store_url(s3_bucket)


def moto_data(endpoint: S3Endpoint) -> object:
    """moto's own view of its state (for debugging failing tests)."""
    with urllib.request.urlopen(endpoint.url + "/moto-api/data.json", timeout=30) as resp:
        return json.load(resp)
