"""``gcs_recorder``: a fresh GCS bucket reached through a request-recording proxy.

The proxy (``tests/emulators/_recorder.py``) sits between the client and fake-gcs-server, so
what a test asserts is what went over the wire, from this process or any child it starts.
``STORAGE_EMULATOR_HOST`` points at the proxy for the test's duration. ``gcs_strict_recorder``
also makes the proxy answer 412 wherever GCS would and the emulator does not (compose, rewrite),
so code that relies on GCS's preconditions alone can be tested.

    def test_commit(gcs_recorder: RecordedGCS) -> None:
        store = open_store(gcs_recorder.store_url)
        ...
        [final] = gcs_recorder.proxy.find("compose", key)
        assert final.param("ifGenerationMatch") == "0"
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ._recorder import RecordingProxy


@dataclass(frozen=True)
class RecordedGCS:
    """A bucket on fake-gcs-server and the proxy every request to it goes through."""

    proxy: RecordingProxy
    bucket: str

    @property
    def url(self) -> str:
        """The endpoint to give a client (also in ``STORAGE_EMULATOR_HOST``)."""
        return self.proxy.url

    @property
    def store_url(self) -> str:
        """A store URL on the fresh bucket."""
        return f"gs://{self.bucket}/store"


@pytest.fixture
def gcs_strict_recorder(
    gcs_endpoint: str, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RecordedGCS]:
    """Like ``gcs_recorder``, and the proxy enforces the preconditions GCS enforces (412)."""
    with RecordingProxy(gcs_endpoint, enforce_preconditions=True) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        yield RecordedGCS(proxy, gcs_bucket)


@pytest.fixture
def gcs_recorder(
    gcs_endpoint: str, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RecordedGCS]:
    """A fresh bucket whose every request is recorded; the bucket's creation is not."""
    with RecordingProxy(gcs_endpoint) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        yield RecordedGCS(proxy, gcs_bucket)
