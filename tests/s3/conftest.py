"""Fixtures for driver-level S3 tests: a driver on a fresh bucket, per S3 server kind.

The S3 kinds are those of the conformance suite whose name starts with ``s3`` (``s3`` is moto
server, ``s3-localstack`` is LocalStack); ``CARGOHOLD_TEST_STORES`` narrows them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cargohold.drivers.s3 import S3Driver, from_url
from cargohold.registry import parse_url
from tests.conftest import STORE_KINDS

S3_KINDS = [kind for kind in STORE_KINDS if kind.startswith("s3")]


def open_s3(url: str, **options: str) -> tuple[S3Driver, str]:
    """Open the S3 driver for a store URL; return it and its key prefix."""
    parts, merged = parse_url(url, options)
    opened = from_url(parts, merged)
    assert isinstance(opened.driver, S3Driver)
    return opened.driver, opened.prefix


@pytest.fixture(params=S3_KINDS)
def s3_url(request: pytest.FixtureRequest) -> str:
    """URL of a fresh, empty store on each S3 server kind."""
    url: str = request.getfixturevalue(STORE_KINDS[request.param])
    return url


@pytest.fixture
def s3_driver(s3_url: str) -> Iterator[S3Driver]:
    driver, _ = open_s3(s3_url)
    try:
        yield driver
    finally:
        driver.close()
