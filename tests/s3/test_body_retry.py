"""A GetObject body cut off mid-stream is fetched again (a unit test of that small piece: the
stream breaks are scripted, since no emulator breaks a body on demand)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ResponseStreamingError

from cargohold.drivers.s3.driver import S3Driver
from cargohold.errors import NotFoundError, UnavailableError


class _Body:
    def __init__(self, data: bytes, broken: bool) -> None:
        self._data, self._broken = data, broken

    def read(self) -> bytes:
        if self._broken:
            raise ResponseStreamingError(error="Connection broken: IncompleteRead")
        return self._data


class _Client:
    """GetObject answers scripted: ``broken`` bodies first, then the data or NoSuchKey."""

    def __init__(self, data: bytes | None, broken: int) -> None:
        self.data, self.broken, self.calls = data, broken, 0

    def get_object(self, **args: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls > self.broken and self.data is None:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
        return {"Body": _Body(self.data or b"", broken=self.calls <= self.broken)}


def _driver(client: _Client) -> S3Driver:
    driver = S3Driver("bucket")
    driver.client = client  # type: ignore[assignment]
    return driver


@pytest.mark.parametrize("read", ["get", "get_range"])
def test_a_broken_body_is_fetched_again(read: str) -> None:
    client = _Client(b"abc", broken=2)
    driver = _driver(client)
    got = driver.get("k") if read == "get" else driver.get_range("k", 0, 3)
    assert got == b"abc" and client.calls == 3


def test_a_body_broken_by_a_delete_ends_as_not_found() -> None:
    client = _Client(None, broken=1)
    with pytest.raises(NotFoundError):
        _driver(client).get_range("k", 0, 3)
    assert client.calls == 2


def test_a_body_that_keeps_breaking_is_unavailable() -> None:
    client = _Client(b"abc", broken=10)
    with pytest.raises(UnavailableError):
        _driver(client).get("k")
    assert client.calls == 3
