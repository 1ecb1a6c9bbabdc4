"""How the S3 driver is configured and how its botocore client is built.

Credentials come only from boto3's default chain (or a named ``profile``); retries are botocore's
(standard or adaptive mode), never hand-made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.utils import determine_content_length

from ...errors import InvalidArgumentError
from ..options import option, parse_options

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["CONTINUE_ABOVE", "S3Options", "S3Settings", "options_from"]

_SSE_VALUES = ("AES256", "aws:kms", "aws:kms:dsse")

CONTINUE_ABOVE = 1024 * 1024
"""Bodies larger than this are sent with ``Expect: 100-continue``; smaller ones without it.

botocore asks every PutObject and UploadPart to wait for the server's ``100 Continue`` before
sending its body, whatever its size: one more round trip for each lease, state or holder
record, each small blob, each tail part. Below this size the body is sent at once, as most
HTTP clients do; a request the server refuses (a failed precondition, a bad signature) then
wastes at most this many bytes, and its answer is the same. Large bodies keep the wait."""


def _continue_only_for_large_bodies(params: dict[str, Any], **_: Any) -> None:
    """A ``before-call`` handler, run after botocore's own: drop the ``Expect`` header it
    added to a request whose body is known to be small."""
    headers = params.get("headers")
    if not headers or "Expect" not in headers:
        return
    size = determine_content_length(params.get("body"))
    if size is not None and size <= CONTINUE_ABOVE:
        del headers["Expect"]


@dataclass(frozen=True)
class S3Options:
    """What the URL options configure: the client, and what every created object carries."""

    region: str | None = None
    endpoint_url: str | None = None
    addressing_style: Literal["auto", "virtual", "path"] = "auto"
    profile: str | None = None
    sse: str | None = option(None, choices=_SSE_VALUES)
    sse_kms_key_id: str | None = None
    storage_class: str | None = None
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = option(5, minimum=1)
    """Total attempts per request (botocore ``total_max_attempts``)."""
    concurrency: int = option(4, minimum=1)
    """Default parallel part uploads; the connection pool holds at least 4 per upload."""

    def __post_init__(self) -> None:
        if self.addressing_style not in ("auto", "virtual", "path"):
            raise InvalidArgumentError("addressing_style must be one of auto, virtual, path")
        if self.sse is not None and self.sse not in _SSE_VALUES:
            raise InvalidArgumentError(f"sse must be one of {_SSE_VALUES}, got {self.sse!r}")
        if self.sse_kms_key_id and not (self.sse or "").startswith("aws:kms"):
            raise InvalidArgumentError("sse_kms_key_id needs sse=aws:kms")
        if self.retry_mode not in ("standard", "adaptive"):
            raise InvalidArgumentError("retry_mode must be one of standard, adaptive")

    @property
    def pool_size(self) -> int:
        """HTTP connections of the one client: uploads, read streams and copies at once."""
        return max(32, 4 * self.concurrency)

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
            max_pool_connections=self.pool_size,
            s3={"addressing_style": self.addressing_style},
            connect_timeout=10,
            read_timeout=60,
        )
        session = boto3.session.Session(profile_name=self.profile)
        client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        client.meta.events.register_last("before-call.s3", _continue_only_for_large_bodies)
        return client


S3Settings = S3Options
"""The former name of ``S3Options``."""


def options_from(options: dict[str, Any], scheme: str = "s3") -> S3Options:
    """Pop the S3 options out of ``options`` (URL query merged with keywords); reject the rest."""
    return parse_options(S3Options, options, scheme)
