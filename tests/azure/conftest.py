"""Fixtures for the Azure driver tests: a driver on a fresh Azurite container, a request counter."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.pipeline.transport import RequestsTransport

from cargohold.drivers.azure import AzureDriver, from_url


@pytest.fixture
def azure_driver(azure_container: str, azurite_connection_string: str) -> Iterator[AzureDriver]:
    """An ``AzureDriver`` on a fresh container (no key prefix)."""
    opened = from_url(
        urlsplit(f"az://{azure_container}"),
        {"connection_string": azurite_connection_string, "retries": 1},
    )
    assert isinstance(opened.driver, AzureDriver)
    try:
        yield opened.driver
    finally:
        opened.driver.close()


class RequestCounter:
    """Counts the HTTP requests every Azure SDK client in this process sends, by method."""

    def __init__(self) -> None:
        self.by_method: Counter[str] = Counter()
        self.queries: list[str] = []
        self._lock = threading.Lock()

    def record(self, method: str, url: str) -> None:
        with self._lock:
            self.by_method[method] += 1
            self.queries.append(f"{method} {urlsplit(url).query}")

    @property
    def total(self) -> int:
        return sum(self.by_method.values())

    def reset(self) -> None:
        with self._lock:
            self.by_method.clear()
            self.queries.clear()


@pytest.fixture
def request_counter(monkeypatch: pytest.MonkeyPatch) -> RequestCounter:
    """Wraps the transport's ``send`` (the one place every SDK request leaves through)."""
    counter = RequestCounter()
    original = RequestsTransport.send

    def counting_send(self: RequestsTransport, request: Any, **kwargs: Any) -> Any:
        counter.record(request.method, request.url)
        return original(self, request, **kwargs)

    monkeypatch.setattr(RequestsTransport, "send", counting_send)
    return counter
