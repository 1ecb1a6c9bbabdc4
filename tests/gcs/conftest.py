"""Fixtures for driver-level GCS tests: a driver on a fresh bucket, and an HTTP request recorder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from cargohold.drivers.gcs import GCSDriver, GCSOptions


@dataclass
class Request:
    """One HTTP request the SDK sent."""

    method: str
    path: str
    query: dict[str, str]


@dataclass
class Recorder:
    """Every request a driver's client sends, in order."""

    requests: list[Request] = field(default_factory=list)

    def clear(self) -> None:
        self.requests.clear()

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]


def record(driver: GCSDriver) -> Recorder:
    """Wrap the driver's HTTP session so that every request is also recorded."""
    recorder = Recorder()
    session = driver.client._http
    original = session.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        recorder.requests.append(Request(method.upper(), unquote(parts.path), query))
        return original(method, url, *args, **kwargs)

    session.request = request
    return recorder


@pytest.fixture
def gcs_driver(gcs_bucket: str, gcs_endpoint: str) -> Iterator[GCSDriver]:
    driver = GCSDriver(gcs_bucket, GCSOptions(endpoint_url=gcs_endpoint, retry_deadline=10))
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture
def recorder(gcs_driver: GCSDriver) -> Recorder:
    return record(gcs_driver)
