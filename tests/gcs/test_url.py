"""``gs://`` / ``gcs://`` URLs and driver options."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

import cargohold
from cargohold.drivers.gcs import GCSDriver, from_url
from cargohold.errors import InvalidArgumentError


def test_url_and_options(gcs_bucket: str, gcs_endpoint: str) -> None:
    url = urlsplit(f"gcs://{gcs_bucket}/a/b/")
    opened = from_url(
        url,
        {
            "endpoint_url": gcs_endpoint,
            "project": "p",
            "part_size": str(16 << 20),
            "concurrency": "3",
            "storage_class": "STANDARD",
        },
    )
    try:
        assert opened.prefix == "a/b"
        assert isinstance(opened.driver, GCSDriver)
        assert opened.driver.limits.default_part_size == 16 << 20
        assert opened.driver.limits.default_concurrency == 3
        opened.driver.put("k", b"x")
        assert opened.driver.head("k").size == 1
    finally:
        opened.driver.close()


def test_open_store_honours_storage_emulator_host(gcs_store_url: str) -> None:
    store = cargohold.open_store(gcs_store_url)
    try:
        assert list(store.walk()) == []
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("gs:///prefix", {}),
        ("gs://bucket/p", {"no_such_option": "1"}),
        ("gs://bucket/p", {"part_size": "big"}),
        ("gs://bucket/p", {"chunk_size": "big"}),
        ("gs://bucket/p", {"concurrency": "0"}),
        ("gs://bucket/p", {"part_size": str(128 << 10)}),
        ("gs://bucket/p", {"timeout": "nan"}),
        ("gs://bucket/p", {"retry_deadline": "inf"}),
    ],
)
def test_bad_urls(url: str, options: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    with pytest.raises(InvalidArgumentError):
        from_url(urlsplit(url), dict(options))


def test_old_option_names_warn_and_still_work(gcs_bucket: str, gcs_endpoint: str) -> None:
    url = urlsplit(f"gs://{gcs_bucket}/p")
    options = {"endpoint_url": gcs_endpoint, "chunk_size": str(1 << 20), "upload_concurrency": 2}
    with pytest.warns(DeprecationWarning, match="chunk_size is deprecated; use part_size"):
        opened = from_url(url, options)
    try:
        assert opened.driver.limits.default_part_size == 1 << 20
        assert opened.driver.limits.default_concurrency == 2
    finally:
        opened.driver.close()
