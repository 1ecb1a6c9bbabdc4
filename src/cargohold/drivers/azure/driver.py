"""``az://container/prefix`` (also ``azure://``): Azure Blob Storage through azure-storage-blob.

Objects are block blobs. An upload session is a set of blocks staged on the target blob itself
(see ``blocks`` for the block ids); ``complete_upload`` commits exactly the blocks it is
given with ``Put Block List``, create-only with ``If-None-Match: *``. Staged blocks stay
invisible to every reader until that commit, so nothing is ever visible under a key before the
whole of it is. Azure keeps uncommitted blocks for 7 days, then drops them; there is no call to
delete them sooner (``abort_upload`` therefore only forgets the session), and any commit to a
blob discards every uncommitted block of that blob, including other sessions' blocks.

Options (URL query or keywords, read by ``client.AzureOptions``): ``account_url``,
``connection_string``, ``part_size``, ``concurrency``, ``access_tier`` (hot, cool, cold),
``retries``. See docs/drivers/azure.md.
"""

from __future__ import annotations

import builtins
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import SplitResult

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobProperties,
    BlobServiceClient,
    BlockState,
    ContainerClient,
    StandardBlobTier,
)

from ...errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ServiceError,
)
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
from .blocks import (
    MAX_PART_NUMBER,
    is_session_id,
    new_block_id,
    new_session_id,
    parse_block_id,
    session_started,
)
from .client import MAX_BLOCK_SIZE, options_from, service_client
from .errors import Condition, translate

__all__ = ["AzureDriver", "from_url"]

_CONTAINER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
_TIERS = {"hot": StandardBlobTier.HOT, "cool": StandardBlobTier.COOL, "cold": StandardBlobTier.COLD}
_LIST_PAGE = 5000
_COPY_POLL_MAX = 5.0
METADATA_BYTES = 8 * 1024


def to_azure_name(key: str) -> str:
    """A metadata key (``[a-z0-9_]+``) as an Azure metadata name (a C# identifier).

    A name may not start with a digit, so such keys, and keys that start with ``_`` (to keep
    the mapping reversible), get one leading ``_``.
    """
    return f"_{key}" if key[:1].isdigit() or key.startswith("_") else key


def from_azure_name(name: str) -> str:
    """The inverse of ``to_azure_name`` (Azure may hand names back in any case)."""
    name = name.lower()
    return name[1:] if name.startswith("_") else name


def _encode_metadata(metadata: Mapping[str, str] | None) -> dict[str, str] | None:
    """Azure names for the keys; the 8 KiB limit checked here, as Azurite does not."""
    if not metadata:
        return None
    encoded = {to_azure_name(k): v for k, v in metadata.items()}
    size = sum(len(k.encode()) + len(v.encode()) for k, v in encoded.items())
    if size > METADATA_BYTES:
        raise InvalidArgumentError(f"metadata of {size} bytes exceeds Azure's {METADATA_BYTES}")
    return encoded


def _decode_metadata(metadata: Mapping[str, str | None] | None) -> dict[str, str]:
    # Listings hand back an empty value as None.
    return {from_azure_name(k): v or "" for k, v in (metadata or {}).items()}


def _object_info(key: str, props: BlobProperties, *, metadata: bool = True) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=int(props.size or 0),
        modified=props.last_modified,
        etag=str(props.etag),
        metadata=_decode_metadata(props.metadata) if metadata else None,
    )


def _conditions(precondition: Precondition | None) -> dict[str, Any]:
    """The SDK keywords for a create-only write or an etag check (or neither)."""
    if precondition is CREATE_ONLY:
        return {"match_condition": MatchConditions.IfMissing}
    if isinstance(precondition, IfMatch):
        return {"etag": precondition.etag, "match_condition": MatchConditions.IfNotModified}
    return {}


class AzureDriver:
    """Block blobs in one container, reached through one shared HTTP connection pool."""

    def __init__(
        self,
        container: ContainerClient,
        *,
        part_size: int = 8 * MiB,
        concurrency: int = 4,
        access_tier: StandardBlobTier | None = None,
    ) -> None:
        self._container = container
        self._tier = access_tier
        self._limits = DriverLimits(
            # Azure has no minimum block size; the store still picks sensible part sizes.
            min_part_size=1,
            max_part_size=MAX_BLOCK_SIZE,
            max_parts=MAX_PART_NUMBER,
            default_part_size=part_size,
            default_concurrency=concurrency,
            metadata_bytes=METADATA_BYTES,
            metadata_mutable=True,
            metadata_in_listing=True,
            abort_removes_parts=False,  # staged blocks cannot be deleted; they expire in 7 days
        )

    @property
    def limits(self) -> DriverLimits:
        return self._limits

    @property
    def container(self) -> ContainerClient:
        """The SDK's container client (for tests and tools; the store never needs it)."""
        return self._container

    def _blob(self, key: str) -> BlobClient:
        return self._container.get_blob_client(key)

    # -- whole objects ----------------------------------------------------------------------

    def put(
        self,
        key: str,
        data: bytes,
        *,
        precondition: Precondition | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        try:
            result = self._blob(key).upload_blob(
                bytes(data),
                length=len(data),
                overwrite=True,
                metadata=_encode_metadata(metadata),
                **_conditions(precondition),
                standard_blob_tier=self._tier,
            )
        except AzureError as exc:
            raise translate(exc, key, Condition.of(precondition)) from exc
        return str(result["etag"])

    def get(self, key: str) -> bytes:
        try:
            return self._blob(key).download_blob(max_concurrency=1).readall()
        except AzureError as exc:
            raise translate(exc, key) from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise InvalidArgumentError(f"{key}: negative offset or length")
        if length == 0:
            self.head(key)
            return b""
        try:
            return (
                self._blob(key)
                .download_blob(offset=offset, length=length, max_concurrency=1)
                .readall()
            )
        except HttpResponseError as exc:
            if exc.status_code == 416:  # at or past the end, or any range of a 0-byte blob
                return b""
            raise translate(exc, key) from exc
        except AzureError as exc:
            raise translate(exc, key) from exc

    def head(self, key: str) -> ObjectInfo:
        try:
            props = self._blob(key).get_blob_properties()
        except AzureError as exc:
            raise translate(exc, key) from exc
        return _object_info(key, props)

    def list(self, prefix: str, *, metadata: bool = False) -> Iterator[ObjectInfo]:
        include = ["metadata"] if metadata else None
        try:
            pages = self._container.list_blobs(
                name_starts_with=prefix or None, include=include, results_per_page=_LIST_PAGE
            )
            for props in pages:
                yield _object_info(props.name, props, metadata=metadata)
        except AzureError as exc:
            raise translate(exc, f"list {prefix!r}") from exc

    def delete(self, key: str, *, precondition: IfMatch | None = None) -> None:
        try:
            self._blob(key).delete_blob(**_conditions(precondition))
        except AzureError as exc:
            error = translate(exc, key)
            # Azure answers 412 (not 404) to If-Match on a missing blob.
            if isinstance(error, NotFoundError) or (
                isinstance(error, FailedPreconditionError)
                and precondition is not None
                and not self._exists(key)
            ):
                return
            raise error from exc

    def copy(self, src: str, dst: str, *, precondition: CreateOnly | None = None) -> str:
        """Server-side ``Copy Blob``; polls only if Azure schedules the copy asynchronously.

        Copies inside one account normally complete within the call (always on Azurite).
        """
        source = self._blob(src)
        target = self._blob(dst)
        try:
            result = target.start_copy_from_url(
                source.url,
                **_conditions(precondition),
                standard_blob_tier=self._tier,
            )
            status = str(result.get("copy_status") or "success")
            etag = str(result["etag"])
            delay = 0.05
            while status == "pending":
                time.sleep(delay)
                delay = min(delay * 2, _COPY_POLL_MAX)
                props = target.get_blob_properties()
                status, etag = str(props.copy.status), str(props.etag)
        except AzureError as exc:
            raise translate(exc, f"copy {src} -> {dst}", Condition.of(precondition)) from exc
        if status != "success":
            raise ServiceError(f"copy {src} -> {dst} ended as {status}")
        return etag

    def set_metadata(
        self, key: str, metadata: Mapping[str, str], *, precondition: IfMatch | None = None
    ) -> str:
        try:
            result = self._blob(key).set_blob_metadata(
                _encode_metadata(metadata) or {},
                **_conditions(precondition),
            )
        except AzureError as exc:
            raise translate(exc, key, Condition.of(precondition)) from exc
        return str(result["etag"])

    # -- upload sessions = staged blocks ----------------------------------------------------

    def start_upload(self, key: str) -> str:
        """A new session id; nothing is sent until the first block is staged."""
        return new_session_id()

    @staticmethod
    def _check_session(key: str, upload_id: str) -> None:
        if not is_session_id(upload_id):
            raise NotFoundError(f"upload {upload_id!r} for {key} not found (not an Azure session)")

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        self._check_session(key, upload_id)
        if not 1 <= number <= MAX_PART_NUMBER:
            raise InvalidArgumentError(f"part number {number} outside 1..{MAX_PART_NUMBER}")
        block_id = new_block_id(upload_id, number)
        try:
            self._blob(key).stage_block(block_id, bytes(data), length=len(data))
        except AzureError as exc:
            raise translate(exc, f"{key} part {number}") from exc
        return Part(number, len(data), block_id)

    def _staged(self, key: str) -> builtins.list[tuple[str, int]] | None:
        """(block id, size) of every uncommitted block of ``key``; ``None`` if none was staged."""
        try:
            _, uncommitted = self._blob(key).get_block_list("uncommitted")
        except AzureError as exc:
            error = translate(exc, key)
            if isinstance(error, NotFoundError):
                return None
            raise error from exc
        return [(str(block.id), int(block.size)) for block in uncommitted]

    def list_parts(self, key: str, upload_id: str) -> builtins.list[Part]:
        """The session's staged blocks, one per part number (the newest when staged twice).

        A session with no blocks is reported as gone (``NotFoundError``) only when the blob was
        committed after the session started, since that commit discarded its blocks.
        """
        self._check_session(key, upload_id)
        newest: dict[int, tuple[str, str, int]] = {}
        for block_id, size in self._staged(key) or []:
            parsed = parse_block_id(block_id)
            if parsed is None or parsed.session != upload_id:
                continue
            held = newest.get(parsed.number)
            if held is None or parsed.stamp > held[0]:
                newest[parsed.number] = (parsed.stamp, block_id, size)
        if not newest and self._committed_since(key, upload_id):
            raise NotFoundError(f"upload {upload_id} for {key} not found (blob committed since)")
        return [Part(n, size, block_id) for n, (_, block_id, size) in sorted(newest.items())]

    def _committed_since(self, key: str, upload_id: str) -> bool:
        try:
            modified = self._blob(key).get_blob_properties().last_modified
        except AzureError as exc:
            error = translate(exc, key)
            if isinstance(error, NotFoundError):
                return False
            raise error from exc
        # Last-Modified has one-second resolution; the session stamp has milliseconds.
        return bool(modified.timestamp() >= int(session_started(upload_id).timestamp()))

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[Part],
        *,
        precondition: CreateOnly | None = None,
    ) -> str:
        self._check_session(key, upload_id)
        blocks = []
        for part in parts:
            parsed = parse_block_id(part.etag)
            if parsed is None or parsed.session != upload_id or parsed.number != part.number:
                raise FailedPreconditionError(f"part {part.number} of {key} is not of this upload")
            blocks.append(BlobBlock(part.etag, BlockState.UNCOMMITTED))
        try:
            result = self._blob(key).commit_block_list(
                blocks,
                **_conditions(precondition),
                standard_blob_tier=self._tier,
            )
        except AzureError as exc:
            error = translate(exc, key, Condition.of(precondition))
            if (
                precondition is CREATE_ONLY
                and isinstance(error, FailedPreconditionError)
                and self._exists(key)
            ):
                error = AlreadyExistsError(f"{key} already exists")
            raise error from exc
        return str(result["etag"])

    def _exists(self, key: str) -> bool:
        try:
            self.head(key)
        except NotFoundError:
            return False
        return True

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Forget the session: Azure cannot delete staged blocks; they expire after 7 days
        or vanish at the next commit to ``key``, and are never visible to readers."""

    def list_uploads(self, prefix: str) -> Iterator[UploadInfo]:
        """Sessions with staged blocks under ``prefix``: one block-list request per blob listed."""
        try:
            listed = self._container.list_blobs(
                name_starts_with=prefix or None,
                include=["uncommittedblobs"],
                results_per_page=_LIST_PAGE,
            )
            names = [props.name for props in listed]
        except AzureError as exc:
            raise translate(exc, f"list uploads {prefix!r}") from exc
        for name in names:
            sessions = {
                parsed.session
                for block_id, _ in self._staged(name) or []
                if (parsed := parse_block_id(block_id)) is not None
            }
            for session in sorted(sessions):
                yield UploadInfo(name, session, session_started(session))

    def close(self) -> None:
        self._container.close()


def _access_tier(raw: Any) -> StandardBlobTier | None:
    if raw is None or raw == "":
        return None
    tier = _TIERS.get(str(raw).lower())
    if tier is None:
        raise InvalidArgumentError(
            f"access_tier must be one of {', '.join(sorted(_TIERS))} (archive blobs cannot be "
            f"read back), got {raw!r}"
        )
    return tier


def from_url(url: SplitResult, options: dict[str, Any]) -> OpenedDriver:
    """``az://container/prefix``; the account comes from the options or the environment.

    Account, in order: ``connection_string`` option; ``account_url`` option (with
    ``DefaultAzureCredential`` from azure-identity); ``AZURE_STORAGE_CONNECTION_STRING``.
    """
    container = url.netloc
    if not _CONTAINER_NAME.fullmatch(container):
        raise InvalidArgumentError(
            f"{url.scheme}:// needs a container name (3-63 lowercase letters, digits and single "
            f"hyphens) as its host, got {container!r}"
        )
    settings = options_from(options, url.scheme)
    tier = _access_tier(settings.access_tier)
    if not settings.connection_string and not settings.account_url:
        settings = settings.with_connection_string(
            os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
        )
    service: BlobServiceClient = service_client(settings)
    driver = AzureDriver(
        service.get_container_client(container),
        part_size=settings.part_size,
        concurrency=settings.concurrency,
        access_tier=tier,
    )
    return OpenedDriver(driver, url.path.strip("/"))
