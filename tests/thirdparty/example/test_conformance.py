"""cargohold's conformance suite on the example driver: one fixture, one import."""

import os
from pathlib import Path

import pytest

from cargohold.testing.suite import *  # noqa: F403

SCHEME = os.environ.get("EXAMPLE_SCHEME", "example")


@pytest.fixture
def cargohold_store_url(tmp_path: Path) -> str:
    """A fresh, empty store of the driver under test, for each test."""
    return f"{SCHEME}://{tmp_path / 'store'}"
