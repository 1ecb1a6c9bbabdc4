"""A lease another writer of this process has just written, but not yet registered as live,
is never taken for one whose holder is gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cargohold.drivers.base import CREATE_ONLY
from cargohold.drivers.local import LocalDriver
from cargohold.errors import UnavailableError
from cargohold.locks import LeaseManager


def test_a_lease_being_acquired_is_not_taken_over(tmp_path: Path) -> None:
    driver = LocalDriver(tmp_path)
    leases = LeaseManager(driver, timeout=30)
    put = driver.put
    seen: list[BaseException | None] = []

    def put_then_race(key: str, data: bytes, **kwargs: Any) -> str:
        etag = put(key, data, **kwargs)
        if kwargs.get("precondition") is CREATE_ONLY and not seen:
            seen.append(None)
            try:  # the first writer's lease is written, not yet registered: a second writer
                leases.acquire(key)
            except UnavailableError as exc:
                seen[0] = exc
        return etag

    driver.put = put_then_race  # type: ignore[method-assign]
    first = leases.acquire("ingest/x/lock")
    assert isinstance(seen[0], UnavailableError)
    leases.renew(first)  # still the first writer's
    leases.release(first)
