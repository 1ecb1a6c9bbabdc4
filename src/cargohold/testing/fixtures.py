"""The conformance suite's fixtures, built on the one fixture a driver's tests provide.

``cargohold_store_url`` (provided by the driver's tests): the URL of a fresh, empty store, one
per test. Everything else here is derived from it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

import cargohold
from cargohold import Store

from .helpers import digest_of, open_small
from .leftovers import KINDS, AbortLog, find_leftovers
from .plugin import CALL_REPORT

__all__ = [
    "cargohold_leftover_check",
    "cargohold_shared_store_url",
    "cstore",
    "ingest",
]

LEAVES_MARK = "cargohold_leaves"


@pytest.fixture
def cargohold_shared_store_url(cargohold_store_url: str, cargohold_store_is_shared: bool) -> str:
    """``cargohold_store_url`` for tests that cross OS processes; they skip on a local store."""
    if not cargohold_store_is_shared:
        pytest.skip("the store lives in one process (cargohold_store_is_shared is False)")
    return cargohold_store_url


@pytest.fixture
def cstore(cargohold_store_url: str) -> Iterator[Store]:
    """The store under test, with small parts so multipart paths run on small blobs."""
    with open_small(cargohold_store_url) as opened:
        yield opened


@pytest.fixture
def ingest(cstore: Store) -> Callable[..., str]:
    """Write ``data`` under a fresh ref and commit it; return its digest."""
    counter = itertools.count()

    def run(data: bytes, labels: dict[str, str] | None = None, ref: str | None = None) -> str:
        name = ref or f"ingest-{next(counter)}"
        with cstore.writer(name) as writer:
            writer.write(data)
            writer.commit(len(data), digest_of(data), labels)
        return digest_of(data)

    return run


def _allowed_kinds(item: pytest.Item) -> set[str]:
    allowed: set[str] = set()
    for mark in item.iter_markers(LEAVES_MARK):
        unknown = set(mark.args) - set(KINDS)
        if unknown or not mark.args:
            raise pytest.UsageError(
                f"{item.nodeid}: {LEAVES_MARK} takes one or more of {', '.join(KINDS)}, "
                f"got {mark.args!r}"
            )
        allowed.update(mark.args)
    return allowed


@pytest.fixture(autouse=True)
def cargohold_leftover_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a passing test that used ``cargohold_store_url``: fail it if the store holds an
    ingestion, a lease, an upload session or a stray object, unless the test is marked
    ``@pytest.mark.cargohold_leaves(kind, ...)`` for that kind (see ``leftovers``)."""
    if "cargohold_store_url" not in request.fixturenames:
        yield
        return
    if not request.config.pluginmanager.has_plugin("cargohold.testing.plugin"):
        raise pytest.UsageError(
            "the conformance suite needs its plugin: add pytest_plugins = "
            '["cargohold.testing.plugin"] to the root conftest.py (or run pytest -p '
            "cargohold.testing.plugin)"
        )
    allowed = _allowed_kinds(request.node)
    url: str = request.getfixturevalue("cargohold_store_url")
    hidden_objects = request.getfixturevalue("cargohold_hidden_objects")
    probe = cargohold.open_store(url)
    driver_class = type(probe.driver.inner)
    probe.close()
    log = AbortLog()
    with log.installed(driver_class):
        yield
    report = request.node.stash.get(CALL_REPORT, None)
    if report is None or not report.passed:
        return  # a failed or skipped test may leave anything; its own report says why
    store = cargohold.open_store(url)
    try:
        hidden = hidden_objects(store.prefix) if hidden_objects else []
        found = find_leftovers(store.driver, store.prefix, log.aborted, hidden).without(allowed)
    finally:
        store.close()
    if found:
        lines = [f"  {kind}: {', '.join(keys)}" for kind, keys in sorted(found.items())]
        pytest.fail(
            "the test left these in the store (mark it "
            f"@pytest.mark.{LEAVES_MARK}(kind, ...) if it means to):\n" + "\n".join(lines),
            pytrace=False,
        )
