"""A node's holder records: a claim taken back after a failure never drops a hold that another
caller of the same node was answered from."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import cargohold
from cargohold.plugin.ownership import Holdings
from cargohold.store import Store
from cargohold.testing.helpers import digest_of

DIGEST = digest_of(b"some blob")


@pytest.fixture
def store(file_store_url: str) -> Iterator[Store]:
    with cargohold.open_store(file_store_url) as opened:
        yield opened


def _record_exists(store: Store, holdings: Holdings) -> bool:
    return any(obj.key.endswith("/" + holdings.node_id) for obj in store.driver.list(""))


def test_a_failed_claimant_takes_its_fresh_record_back(store: Store) -> None:
    holdings = Holdings(store, "node-a")
    assert holdings.claim(DIGEST) is True
    assert _record_exists(store, holdings)
    holdings.forget(DIGEST)  # its commit failed; nobody else used the hold
    assert not _record_exists(store, holdings)
    assert not holdings.holds_cached(DIGEST)
    assert holdings.claim(DIGEST) is True  # a later claim writes it again


def test_a_hold_another_caller_was_answered_from_stays(store: Store) -> None:
    holdings = Holdings(store, "node-a")
    assert holdings.claim(DIGEST) is True  # a commit claims; its claim is fresh
    assert holdings.claim(DIGEST) is False  # another stream of this node relies on it
    holdings.forget(DIGEST)  # the first commit fails afterwards
    assert _record_exists(store, holdings)  # the second stream's blob is still held
    assert holdings.holds_cached(DIGEST)
    assert DIGEST in holdings.held()


def test_release_clears_the_reliance(store: Store) -> None:
    holdings = Holdings(store, "node-a")
    holdings.claim(DIGEST)
    holdings.claim(DIGEST)
    holdings.release(DIGEST)  # Delete: no blob stored, so nothing else to remove
    assert not _record_exists(store, holdings)
    assert holdings.claim(DIGEST) is True
    holdings.forget(DIGEST)  # fresh again, relied on by nobody: taken back
    assert not _record_exists(store, holdings)
