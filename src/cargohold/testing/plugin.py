"""The pytest plugin of the conformance suite: its markers, and each test's outcome for the
leftover check.

Load it from the root ``conftest.py`` (``pytest_plugins = ["cargohold.testing.plugin"]``) or
with ``pytest -p cargohold.testing.plugin``; the tests themselves come from
``from cargohold.testing.suite import *`` in a test module (see docs/testing.md).
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

__all__ = ["CALL_REPORT", "MARKERS"]

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
