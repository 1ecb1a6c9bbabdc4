"""The pytest plugin of the conformance suite: its markers, each test's outcome for the leftover
check, and the defaults of the fixtures a driver's tests may override.

Load it from the root ``conftest.py`` (``pytest_plugins = ["cargohold.testing.plugin"]``) or
with ``pytest -p cargohold.testing.plugin``; the tests themselves come from
``from cargohold.testing.suite import *`` in a test module (see docs/testing.md).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from urllib.parse import urlsplit

import pytest

__all__ = ["CALL_REPORT", "MARKERS", "cargohold_hidden_objects", "cargohold_store_is_shared"]

MARKERS = (
    "cargohold_leaves(*kinds): the test means to leave things of these kinds in the store "
    "(ingestion, lease, upload, object); the leftover check lets them be",
    "multiprocess: runs parts of the test in other OS processes (needs a store shared across "
    "processes)",
    "slow: larger blobs or many processes",
)

CALL_REPORT = pytest.StashKey[pytest.TestReport]()
"""The report of a test's call phase, on its item's stash (read by the leftover check)."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the suite's markers (so ``--strict-markers`` accepts them)."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep the call phase's report, so teardown knows whether the test itself passed."""
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


# The fixtures a driver's tests may override (in a conftest.py or the test module): defaults
# here, in the plugin, so that an override anywhere takes precedence.


@pytest.fixture
def cargohold_store_is_shared(cargohold_store_url: str) -> bool:
    """Whether other OS processes opening the URL see the same store (override to say so).

    The default is True for every scheme but ``memory://``, whose stores live in one process.
    """
    return urlsplit(cargohold_store_url).scheme != "memory"


@pytest.fixture
def cargohold_hidden_objects() -> Callable[[str], list[str]] | None:
    """Optional: a function listing the objects the driver keeps under a prefix but shows in
    neither ``list`` nor ``list_uploads`` (its own bookkeeping), for the leftover check to see
    them too. None (the default) when there are none."""
    return None
