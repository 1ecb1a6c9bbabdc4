"""Opening Azure stores: URL, options, credentials, and the errors for an unusable account."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

import pytest

from cargohold.drivers.azure import AzureDriver, from_url
from cargohold.errors import InvalidArgumentError, ServiceError, UnavailableError
from cargohold.registry import open_driver, parse_url
from tests.emulators._process import free_port
from tests.emulators.azurite import DEV_KEY, dev_connection_string


def _open(url: str, **options: object) -> AzureDriver:
    parts, merged = parse_url(url, options)
    driver = open_driver(parts, merged).driver
    assert isinstance(driver, AzureDriver)
    return driver


def test_url_options_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", dev_connection_string(10000))
    parts, merged = parse_url("azure://my-container/some/prefix/?part_size=1048576", {})
    opened = open_driver(parts, {**merged, "concurrency": "8", "access_tier": "Cool"})
    assert opened.prefix == "some/prefix"
    assert opened.driver.limits.default_part_size == 1 << 20
    assert opened.driver.limits.default_concurrency == 8
    opened.driver.close()


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("az://UPPER/x", {}, "container name"),
        ("az://ab/x", {}, "container name"),
        ("az://a--b/x", {}, "container name"),
        ("az://good/x", {"colour": "blue"}, "unknown option"),
        ("az://good/x", {"access_tier": "archive"}, "access_tier"),
        ("az://good/x", {"part_size": "zero"}, "part_size"),
        ("az://good/x", {"part_size": str(5000 << 20)}, "4000 MiB"),
        ("az://good/x", {"block_size": "zero"}, "block_size"),
        ("az://good/x", {"block_size": str(5000 << 20)}, "4000 MiB"),
        ("az://good/x", {"retries": "1.5"}, "retries"),
        ("az://good/x", {"account_url": "ftp://x"}, "account_url"),
    ],
)
def test_bad_urls_and_options(
    url: str, options: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", dev_connection_string(10000))
    with pytest.raises(InvalidArgumentError, match=message):
        _open(url, **options)


def test_no_account_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(InvalidArgumentError, match="AZURE_STORAGE_CONNECTION_STRING"):
        _open("az://container/x")


def test_both_account_forms_conflict() -> None:
    with pytest.raises(InvalidArgumentError, match="not both"):
        _open(
            "az://container/x",
            connection_string=dev_connection_string(1),
            account_url="https://acct.example",
        )


def test_account_url_without_azure_identity_hints_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # as if it were not installed
    with pytest.raises(InvalidArgumentError, match=r"cargohold\[azure-identity\]"):
        _open("az://container/x", account_url="https://acct.example")


def test_malformed_connection_string_does_not_leak_the_key() -> None:
    secret = "AccountName=a;AccountKey=" + DEV_KEY + ";NoEndpoint"
    with pytest.raises(InvalidArgumentError) as caught:
        _open("az://container/x", connection_string=secret)
    assert DEV_KEY not in str(caught.value)
    assert "AccountKey" not in repr(caught.value)


def test_unreachable_service_is_unavailable() -> None:
    driver = from_url(
        urlsplit("az://container"),
        {"connection_string": dev_connection_string(free_port()), "retries": 0},
    ).driver
    with pytest.raises(UnavailableError):
        driver.head("k")
    driver.close()


def test_missing_container_is_a_service_error(azurite_connection_string: str) -> None:
    driver = from_url(
        urlsplit("az://no-such-container"), {"connection_string": azurite_connection_string}
    ).driver
    with pytest.raises(ServiceError, match="ContainerNotFound"):
        driver.put("k", b"x")
    driver.close()


def test_old_option_names_warn_and_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", dev_connection_string(10000))
    with pytest.warns(DeprecationWarning) as caught:
        driver = _open("az://container/x", block_size=2 << 20, upload_concurrency=3)
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        "option block_size is deprecated; use part_size",
        "option upload_concurrency is deprecated; use concurrency",
    ]
    assert (driver.limits.default_part_size, driver.limits.default_concurrency) == (2 << 20, 3)
    driver.close()


def test_connection_string_is_never_repeated_in_option_errors() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        _open("az://container/x", connection_string=12345)
    assert "12345" not in str(caught.value)
