"""open_store: URL parsing, store options, driver options, errors with install hints."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import cargohold
from cargohold import InvalidArgumentError


@pytest.mark.parametrize(
    "url",
    ["", "no-scheme", "ftp://host/x", "file://relative/path", "file://otherhost/abs"],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(InvalidArgumentError):
        cargohold.open_store(url)


def test_store_options_from_query_and_keywords(tmp_path: Path) -> None:
    url = f"file://{tmp_path}?part_size=1048576&concurrency=3&lease_timeout=5&read_streams=2"
    store = cargohold.open_store(url)
    try:
        assert (store.part_size, store.concurrency, store.lease_timeout) == (1 << 20, 3, 5.0)
        assert store.read_streams == 2
    finally:
        store.close()
    store = cargohold.open_store(f"file://{tmp_path}?concurrency=3", concurrency=7)
    try:
        assert store.concurrency == 7  # keywords win over the query
        assert store.read_streams == 7  # the file driver has no preference of its own
    finally:
        store.close()


@pytest.mark.parametrize(
    "options",
    [{"part_size": "big"}, {"concurrency": "0"}, {"lease_timeout": "-1"}, {"no_such": "1"}],
)
def test_bad_options(tmp_path: Path, options: dict[str, str]) -> None:
    with pytest.raises(InvalidArgumentError):
        cargohold.open_store(f"file://{tmp_path}", **options)


def test_part_size_is_raised_to_the_driver_minimum() -> None:
    store = cargohold.open_store("memory://minimum", part_size=1, min_part_size=4096)
    try:
        assert store.part_size == 4096
    finally:
        store.close()


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if cargohold[s3] were not installed
    for name in [m for m in sys.modules if m.startswith("cargohold.drivers.s3")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(InvalidArgumentError, match=r"cargohold\[s3\]"):
        cargohold.open_store("s3://bucket/prefix")


def test_memory_stores_of_one_name_share_content() -> None:
    first = cargohold.open_store("memory://shared-name")
    second = cargohold.open_store("memory://shared-name")
    try:
        with first.writer("r") as writer:
            writer.write(b"shared")
            digest = writer.digest()
            writer.commit()
        assert second.info(digest).size == 6
    finally:
        first.close()
        second.close()
