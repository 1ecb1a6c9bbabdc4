"""The pytest plugin of the conformance suite: registers its markers.

Load it from the root ``conftest.py`` (``pytest_plugins = ["cargohold.testing.plugin"]``) or
with ``pytest -p cargohold.testing.plugin``; the tests themselves come from
``from cargohold.testing.suite import *`` in a test module (see docs/testing.md).
"""

from __future__ import annotations

import pytest

MARKERS = (
    "cargohold_leaves(*kinds): the test means to leave these behind in the store "
    "(ingestion, upload, part); the leftover check skips them",
    "multiprocess: runs parts of the test in other OS processes (needs a store shared across "
    "processes)",
    "slow: larger blobs or many processes",
)


def pytest_configure(config: pytest.Config) -> None:
    """Register the suite's markers (so ``--strict-markers`` accepts them)."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
