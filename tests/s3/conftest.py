"""Fixtures for driver-level S3 tests: a driver on a fresh moto bucket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cargohold.drivers.s3 import S3Driver, from_url
from cargohold.registry import parse_url


def open_s3(url: str, **options: str) -> tuple[S3Driver, str]:
    """Open the S3 driver for a store URL; return it and its key prefix."""
    parts, merged = parse_url(url, options)
    opened = from_url(parts, merged)
    assert isinstance(opened.driver, S3Driver)
    return opened.driver, opened.prefix


@pytest.fixture
def s3_driver(s3_store_url: str) -> Iterator[S3Driver]:
    driver, _ = open_s3(s3_store_url)
    try:
        yield driver
    finally:
        driver.close()
