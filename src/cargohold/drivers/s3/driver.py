"""``s3://bucket/prefix``: Amazon S3 and S3-compatible services, through one botocore client.

Create-only writes send ``If-None-Match: *`` (PutObject, CompleteMultipartUpload); ``IfMatch``
writes send ``If-Match`` (PutObject, DeleteObject). A create-only ``copy`` is a multipart upload
on the destination filled by UploadPartCopy (one part per 5 GiB at most) and completed with
``If-None-Match: *``, so it is atomic and has no size limit. S3 user metadata can only change by
rewriting the object and never shows in listings, so ``limits`` says so and the store keeps labels
in sidecar objects. Retries are botocore's (standard or adaptive mode), never hand-made.

URL options (see docs/drivers/s3.md): ``region``, ``endpoint_url``, ``addressing_style``,
``profile``, ``sse``, ``sse_kms_key_id``, ``storage_class``, ``retry_mode``, ``max_attempts``,
``concurrency`` (read by ``client.S3Options``). Credentials come only from boto3's default chain.
"""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from ...errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from ...registry import OpenedDriver
from ..base import (
    CREATE_ONLY,
    CreateOnly,
    DriverLimits,
    IfMatch,
    MiB,
    ObjectInfo,
    Part,
    Precondition,
    UploadInfo,
)
from .client import S3Options, options_from
from .errors import Condition, error_code, s3_errors

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Driver", "from_url"]

GiB = 1024 * MiB
LIMITS = DriverLimits(
    min_part_size=5 * MiB,
    max_part_size=5 * GiB,
    max_parts=10_000,
    default_part_size=8 * MiB,
    default_concurrency=4,
    metadata_bytes=2048,
    metadata_mutable=False,
    metadata_in_listing=False,
)
_PartList = list[Part]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


_BODY_ATTEMPTS = 3
_BODY_ERRORS = (ResponseStreamingError, IncompleteReadError, ReadTimeoutError)


class S3Driver:
    """The driver protocol over one bucket (the store's prefix is part of the keys it gets)."""

    def __init__(self, bucket: str, settings: S3Options | None = None) -> None:
        self.bucket = bucket
        self.settings = settings or S3Options()
        self._limits = dataclasses.replace(LIMITS, default_concurrency=self.settings.concurrency)
        self.client: S3Client = self.settings.client()
        self._create = self.settings.create_args()
        self._conditional_delete = True
        # upload id -> part number -> (ETag, CRC32) of the parts this process uploaded
        self._crc: dict[str, dict[int, tuple[str, str]]] = {}
        self._crc_lock = threading.Lock()
        """Cleared when the server answers NotImplemented to DeleteObject with If-Match."""
        self.copy_part_size = LIMITS.max_part_size
        """Largest piece one UploadPartCopy moves (S3 allows 5 GiB)."""

    @property
    def limits(self) -> DriverLimits:
        return self._limits

    def put(
        self,
        key: str,
        data: bytes,
        *,
        precondition: Precondition | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data, **self._create}
        condition = Condition.NONE
        if precondition is CREATE_ONLY:
            args["IfNoneMatch"] = "*"
            condition = Condition.CREATE_ONLY
        elif isinstance(precondition, IfMatch):
            args["IfMatch"] = precondition.etag
            condition = Condition.IF_MATCH
        if metadata:
            # Protocol keys are [a-z0-9_]; many HTTP servers drop header names with "_",
            # so they travel with "-" instead (a safe swap: "-" never occurs in them).
            args["Metadata"] = {k.replace("_", "-"): v for k, v in metadata.items()}
        with s3_errors(f"put {key}", condition):
            return self.client.put_object(**args)["ETag"]

    def _get_body(self, **args: Any) -> bytes:
        """GetObject and its body. A body cut off mid-stream (a dropped connection, or a
        server that ends the stream when the object is deleted under it) is fetched again,
        up to ``_BODY_ATTEMPTS`` times: the SDK retries the request but not its body, and a
        fresh request answers with the object's bytes or, if it is gone, NoSuchKey."""
        for attempt in range(1, _BODY_ATTEMPTS + 1):
            resp = self.client.get_object(Bucket=self.bucket, **args)
            try:
                body: bytes = resp["Body"].read()
                return body
            except _BODY_ERRORS:
                if attempt == _BODY_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def get(self, key: str) -> bytes:
        with s3_errors(f"get {key}"):
            return self._get_body(Key=key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if length <= 0:
            self.head(key)  # a missing key is still NotFound
            return b""
        byte_range = f"bytes={offset}-{offset + length - 1}"
        with s3_errors(f"get {key} {byte_range}"):
            try:
                return self._get_body(Key=key, Range=byte_range)
            except ClientError as exc:
                if error_code(exc) == "InvalidRange":  # offset at or past the end
                    return b""
                raise

    def head(self, key: str) -> ObjectInfo:
        with s3_errors(f"head {key}"):
            resp = self.client.head_object(Bucket=self.bucket, Key=key)
        return ObjectInfo(
            key,
            resp["ContentLength"],
            _utc(resp["LastModified"]),
            resp["ETag"],
            {k.replace("-", "_"): v for k, v in resp.get("Metadata", {}).items()},
        )

    def list(self, prefix: str, *, metadata: bool = False) -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2")
        with s3_errors(f"list {prefix}"):
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        item["Key"], item["Size"], _utc(item["LastModified"]), item["ETag"]
                    )

    def delete(self, key: str, *, precondition: IfMatch | None = None) -> None:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if_match = precondition.etag if precondition is not None else None
        if if_match is not None:
            if not self._conditional_delete:
                self._delete_if_match_by_head(key, if_match)
                return
            args["IfMatch"] = if_match
        with s3_errors(f"delete {key}", Condition.IF_MATCH if if_match else Condition.NONE):
            try:
                self.client.delete_object(**args)
            except ClientError as exc:
                code = error_code(exc)
                if code in ("NoSuchKey", "NotFound", "404"):
                    return  # already gone: deleting is idempotent
                if code != "NotImplemented" or if_match is None:
                    raise
                self._conditional_delete = False  # e.g. LocalStack 4.x: no If-Match on delete
        if if_match is not None and not self._conditional_delete:
            self._delete_if_match_by_head(key, if_match)

    def _delete_if_match_by_head(self, key: str, if_match: str) -> None:
        """Conditional delete for servers without it: HEAD, compare, DELETE (not atomic)."""
        try:
            current = self.head(key).etag
        except NotFoundError:
            return
        if current.strip('"') != if_match.strip('"'):
            raise FailedPreconditionError(f"delete {key}: the object's etag does not match")
        self.delete(key)

    def copy(self, src: str, dst: str, *, precondition: CreateOnly | None = None) -> str:
        size = self.head(src).size
        if size == 0:
            return self.put(dst, b"", precondition=precondition)
        upload_id = self.start_upload(dst)
        try:
            step = self.copy_part_size
            pieces = -(-size // step)
            ranges = [(n + 1, n * step, min(size, (n + 1) * step) - 1) for n in range(pieces)]
            if pieces == 1:
                parts = [self._copy_part(src, dst, upload_id, *ranges[0])]
            else:
                with ThreadPoolExecutor(min(pieces, self.settings.pool_size)) as pool:
                    parts = list(
                        pool.map(lambda r: self._copy_part(src, dst, upload_id, *r), ranges)
                    )
            return self.complete_upload(dst, upload_id, parts, precondition=precondition)
        except BaseException:
            self.abort_upload(dst, upload_id)
            raise

    def _copy_part(
        self, src: str, dst: str, upload_id: str, number: int, first: int, last: int
    ) -> Part:
        with s3_errors(f"copy {src} to {dst} part {number}"):
            resp = self.client.upload_part_copy(
                Bucket=self.bucket,
                Key=dst,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": src},
                CopySourceRange=f"bytes={first}-{last}",
            )
        result = resp["CopyPartResult"]
        self._remember(upload_id, number, result["ETag"], result.get("ChecksumCRC32"))
        return Part(number, last - first + 1, result["ETag"])

    def start_upload(self, key: str) -> str:
        with s3_errors(f"start upload {key}"):
            resp = self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                ChecksumAlgorithm="CRC32",
                **self._create,  # type: ignore[arg-type]
            )
        upload_id: str = resp["UploadId"]
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        with s3_errors(f"upload part {number} of {key}"):
            resp = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        self._remember(upload_id, number, resp["ETag"], resp.get("ChecksumCRC32"))
        return Part(number, len(data), resp["ETag"])

    def _remember(self, upload_id: str, number: int, etag: str, crc32: str | None) -> None:
        with self._crc_lock:
            self._crc.setdefault(upload_id, {})[number] = (etag, crc32 or "")

    def list_parts(self, key: str, upload_id: str) -> _PartList:
        pages = self.client.get_paginator("list_parts")
        with s3_errors(f"list parts of {key}"):
            return [
                Part(p["PartNumber"], p["Size"], p["ETag"])
                for page in pages.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id)
                for p in page.get("Parts", [])
            ]

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[Part],
        *,
        precondition: CreateOnly | None = None,
    ) -> str:
        if not parts:  # S3 wants at least one part: a single empty one makes a 0-byte object
            parts = [self.upload_part(key, upload_id, 1, b"")]
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": self._complete_entries(key, upload_id, parts)},
        }
        condition = Condition.NONE
        if precondition is CREATE_ONLY:
            args["IfNoneMatch"] = "*"
            condition = Condition.CREATE_ONLY
        with s3_errors(f"complete upload of {key}", condition):
            return self.client.complete_multipart_upload(**args)["ETag"]

    def _complete_entries(
        self, key: str, upload_id: str, parts: Sequence[Part]
    ) -> builtins.list[dict[str, Any]]:
        """The Parts of a CompleteMultipartUpload, each with its CRC32 where S3 has one.

        Uploads are created with ``ChecksumAlgorithm=CRC32``, as boto3's transfer manager does:
        botocore sends every part's CRC32 anyway, and the server then need not checksum the
        whole object again at completion. S3 wants each part's checksum repeated here: this
        process remembers the ones it uploaded; a session resumed from elsewhere gets the rest
        from ListParts (servers that do not keep them, like moto, do not need them).
        """
        with self._crc_lock:
            known = self._crc.pop(upload_id, {})
        if any(known.get(p.number, ("", ""))[0] != p.etag for p in parts):
            with s3_errors(f"list parts of {key}"):
                for page in self.client.get_paginator("list_parts").paginate(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                ):
                    for p in page.get("Parts", []):
                        if p.get("ChecksumCRC32"):
                            known[p["PartNumber"]] = (p["ETag"], p["ChecksumCRC32"])
        entries: builtins.list[dict[str, Any]] = []
        for part in parts:
            entry: dict[str, Any] = {"PartNumber": part.number, "ETag": part.etag}
            etag, crc32 = known.get(part.number, ("", ""))
            if crc32 and etag == part.etag:
                entry["ChecksumCRC32"] = crc32
            entries.append(entry)
        return entries

    def abort_upload(self, key: str, upload_id: str) -> None:
        with self._crc_lock:
            self._crc.pop(upload_id, None)
        with s3_errors(f"abort upload of {key}"):
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if error_code(exc) != "NoSuchUpload":
                    raise

    def list_uploads(self, prefix: str) -> Iterator[UploadInfo]:
        pages = self.client.get_paginator("list_multipart_uploads")
        with s3_errors(f"list uploads under {prefix}"):
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
                for up in page.get("Uploads", []):
                    initiated = up.get("Initiated")
                    yield UploadInfo(
                        up["Key"], up["UploadId"], _utc(initiated) if initiated else None
                    )

    def close(self) -> None:
        self.client.close()


def from_url(url: SplitResult, options: dict[str, Any]) -> OpenedDriver:
    """``s3://bucket/prefix?region=…&endpoint_url=…`` → an S3 driver and its key prefix."""
    bucket = url.netloc
    if not bucket:
        raise InvalidArgumentError("s3:// URLs need a bucket: s3://bucket/prefix")
    settings = options_from(options)
    try:
        driver = S3Driver(bucket, settings)
    except (BotoCoreError, ValueError) as exc:  # an unknown profile, a malformed endpoint_url
        raise InvalidArgumentError(f"cannot open s3://{bucket}: {exc}") from exc
    return OpenedDriver(driver, url.path.strip("/"))
