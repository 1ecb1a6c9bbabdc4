"""Building the Azure ``BlobServiceClient``: account and credential, retries, connection pool.

Secrets (connection strings, account keys, tokens) are handed to the SDK and never put into an
error message or a log line by cargohold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient, ExponentialRetry
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ...errors import InvalidArgumentError
from ..base import MiB
from ..options import option, parse_options

__all__ = ["AzureOptions", "options_from", "service_client"]

_CONNECT_TIMEOUT = 10
_READ_TIMEOUT = 120
_READ_BLOCK = 1 * MiB
MAX_BLOCK_SIZE = 4000 * MiB


@dataclass(frozen=True)
class AzureOptions:
    """The URL options: how to reach the account, and how blobs are written.

    The connection string is never printed (it may hold a key).
    """

    connection_string: str = dataclasses.field(default="", repr=False, metadata={"secret": True})
    account_url: str = ""
    part_size: int = option(8 * MiB, minimum=1, maximum=MAX_BLOCK_SIZE, size=True)
    """Default part (block) size; Azure's limit for one block is 4000 MiB."""
    concurrency: int = option(4, minimum=1)
    """Default parallel part uploads; also sizes the connection pool."""
    access_tier: str | None = None
    """hot, cool or cold (checked by the driver, which maps it to the SDK's tier)."""
    retries: int = option(5, minimum=0)

    def with_connection_string(self, connection_string: str) -> AzureOptions:
        """A copy with another connection string."""
        return dataclasses.replace(self, connection_string=connection_string)


def options_from(options: dict[str, Any], scheme: str) -> AzureOptions:
    """Pop the Azure options out of ``options`` (URL query merged with keywords)."""
    return parse_options(AzureOptions, options, scheme)


def _adapter_class() -> type[HTTPAdapter]:
    """azure-core's adapter with larger socket buffers (faster uploads), if it has one."""
    try:
        from azure.core.pipeline.transport._bigger_block_size_http_adapters import (
            BiggerBlockSizeHTTPAdapter,
        )
    except ImportError:  # pragma: no cover - older azure-core
        return HTTPAdapter
    return BiggerBlockSizeHTTPAdapter


def _session(pool_size: int) -> requests.Session:
    """A requests session whose pool holds every concurrent transfer's connection.

    urllib3's own retries stay off: the SDK's retry policy is the one place that retries.
    """
    adapter = _adapter_class()(
        pool_connections=4,
        pool_maxsize=pool_size,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _credential() -> Any:
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:
        raise InvalidArgumentError(
            "account_url needs azure-identity for DefaultAzureCredential; install it with "
            "pip install 'cargohold[azure-identity]', or set AZURE_STORAGE_CONNECTION_STRING"
        ) from exc
    return DefaultAzureCredential()


def service_client(settings: AzureOptions) -> BlobServiceClient:
    """A client for the configured account, with cargohold's retry and transfer settings."""
    pool_size = max(32, 4 * settings.concurrency)
    options: dict[str, Any] = {
        # Exponential backoff (about 1, 3, 5, 9, 17 s) on 408/429/5xx and dropped connections.
        "retry_policy": ExponentialRetry(
            initial_backoff=1, increment_base=2, retry_total=settings.retries, random_jitter_range=1
        ),
        "transport": RequestsTransport(
            session=_session(pool_size),
            session_owner=True,
            connection_timeout=_CONNECT_TIMEOUT,
            read_timeout=_READ_TIMEOUT,
            # Bytes per socket read of a response body (the transport's own default is 4 KiB).
            connection_data_block_size=_READ_BLOCK,
        ),
        # One request per put and per ranged read: the store already splits into parts.
        "max_single_put_size": 256 * MiB,
        "max_single_get_size": 256 * MiB,
        "max_chunk_get_size": 16 * MiB,
    }
    if settings.connection_string and settings.account_url:
        raise InvalidArgumentError("give either connection_string or account_url, not both")
    if settings.connection_string:
        try:
            return BlobServiceClient.from_connection_string(settings.connection_string, **options)
        except ValueError:
            # The SDK's message may quote the string, which can hold a key: do not repeat it.
            raise InvalidArgumentError("the Azure connection string is malformed") from None
    if settings.account_url:
        if not settings.account_url.startswith(("https://", "http://")):
            raise InvalidArgumentError(
                f"account_url must be an http(s) URL, got {settings.account_url!r}"
            )
        return BlobServiceClient(settings.account_url, credential=_credential(), **options)
    raise InvalidArgumentError(
        "no Azure account given: set AZURE_STORAGE_CONNECTION_STRING, or pass the "
        "connection_string or account_url option"
    )
