"""How the S3 driver is configured and how its botocore client is built.

Credentials come only from boto3's default chain (or a named ``profile``); retries are botocore's
(standard or adaptive mode), never hand-made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

import boto3
from botocore.config import Config

from ...errors import InvalidArgumentError
from ...registry import option_int

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Settings", "settings_from_options"]

_SSE_VALUES = ("AES256", "aws:kms", "aws:kms:dsse")
_ADDRESSING = ("auto", "virtual", "path")
_RETRY_MODES = ("standard", "adaptive")


class S3Settings:
    """What the URL options configure: the client, and what every created object carries."""

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        addressing_style: str = "auto",
        profile: str | None = None,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
        storage_class: str | None = None,
        retry_mode: str = "standard",
        max_attempts: int = 5,
        max_connections: int = 32,
    ) -> None:
        if addressing_style not in _ADDRESSING:
            raise InvalidArgumentError(f"addressing_style must be one of {_ADDRESSING}")
        if sse is not None and sse not in _SSE_VALUES:
            raise InvalidArgumentError(f"sse must be one of {_SSE_VALUES}, got {sse!r}")
        if sse_kms_key_id and not (sse or "").startswith("aws:kms"):
            raise InvalidArgumentError("sse_kms_key_id needs sse=aws:kms")
        if retry_mode not in _RETRY_MODES:
            raise InvalidArgumentError(f"retry_mode must be one of {_RETRY_MODES}")
        self.region = region
        self.endpoint_url = endpoint_url
        self.addressing_style = cast(Literal["auto", "virtual", "path"], addressing_style)
        self.profile = profile
        self.sse = sse
        self.sse_kms_key_id = sse_kms_key_id
        self.storage_class = storage_class
        self.retry_mode = cast(Literal["standard", "adaptive"], retry_mode)
        self.max_attempts = max_attempts
        self.max_connections = max_connections

    def create_args(self) -> dict[str, str]:
        """Encryption and storage class for every PutObject / CreateMultipartUpload."""
        args: dict[str, str] = {}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
        if self.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.sse_kms_key_id
        if self.storage_class:
            args["StorageClass"] = self.storage_class
        return args

    def client(self) -> S3Client:
        """One botocore client, credentials from boto3's default chain (or ``profile``)."""
        config = Config(
            region_name=self.region,
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
            max_pool_connections=self.max_connections,
            s3={"addressing_style": self.addressing_style},
            connect_timeout=10,
            read_timeout=60,
        )
        session = boto3.session.Session(profile_name=self.profile)
        return session.client("s3", endpoint_url=self.endpoint_url, config=config)


def settings_from_options(options: dict[str, Any]) -> S3Settings:
    """Pop the S3 options out of ``options`` (URL query merged with keywords)."""

    def text(name: str) -> str | None:
        value = options.pop(name, None)
        return str(value) if value not in (None, "") else None

    return S3Settings(
        region=text("region"),
        endpoint_url=text("endpoint_url"),
        addressing_style=text("addressing_style") or "auto",
        profile=text("profile"),
        sse=text("sse"),
        sse_kms_key_id=text("sse_kms_key_id"),
        storage_class=text("storage_class"),
        retry_mode=text("retry_mode") or "standard",
        max_attempts=option_int(options, "max_attempts", 5, minimum=1),
        max_connections=option_int(options, "max_connections", 32, minimum=1),
    )
