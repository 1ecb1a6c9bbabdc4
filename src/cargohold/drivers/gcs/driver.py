"""``gs://bucket/prefix``: the driver for Google Cloud Storage (JSON API, google-cloud-storage).

Upload sessions are temporary objects joined by ``compose`` (see docs/drivers/gcs.md)::

    <key>.~parts/<upload_id>/session      marks a started session (its creation time)
    <key>.~parts/<upload_id>/00001 ...    one object per part; Part.etag = its generation
    <key>.~parts/claim                    held while a create-only commit into <key> runs

Anything under a ``.~parts/`` segment is the driver's own and never appears in ``list``.

Etags: an object's etag is ``"<generation>.<metageneration>"``; ``IfMatch`` sends both as
``ifGenerationMatch`` and ``ifMetagenerationMatch``, so a byte rewrite and a metadata update
are both detected. Create-only writes send ``ifGenerationMatch=0``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import SplitResult

import requests
from google.api_core import exceptions as api
from google.api_core.retry import Retry
from google.cloud import storage

from ...errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
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
from .claim import CommitClaim
from .client import GCSOptions, make_client, options_from, uses_claims
from .errors import Condition, is_transient, raise_translated

__all__ = ["GCSDriver", "from_url"]

SESSIONS = ".~parts/"
_SESSION_MARKER = "session"
_CLAIM = "claim"
_COMPOSE_MAX = 32
_CONTENT_TYPE = "application/octet-stream"
_T = TypeVar("_T")
_Sources = list[tuple[str, int]]
_Parts = list[Part]  # spelled here: inside the class, ``list`` is the method
"""Compose sources: (object name, generation it must still have)."""


class _Attempts:
    """Counts the failed attempts of one SDK call, to know whether it was retried."""

    def __init__(self) -> None:
        self.failed = 0

    def on_error(self, exc: Exception) -> None:
        self.failed += 1


def _etag(blob: storage.Blob) -> str:
    return f"{blob.generation}.{blob.metageneration or 1}"


def _match(etag: str, what: str) -> tuple[int, int | None]:
    """Split an etag into (generation, metageneration); garbage never matches."""
    generation, _, metageneration = etag.partition(".")
    try:
        return int(generation), int(metageneration) if metageneration else None
    except ValueError:
        raise FailedPreconditionError(f"{what}: etag {etag!r} does not match") from None


def _info(blob: storage.Blob, *, metadata: bool = True) -> ObjectInfo:
    modified = blob.updated or datetime.now(UTC)
    return ObjectInfo(
        key=blob.name,
        size=int(blob.size or 0),
        modified=modified.astimezone(UTC),
        etag=_etag(blob),
        metadata=dict(blob.metadata or {}) if metadata else None,
    )


def _session_prefix(key: str, upload_id: str) -> str:
    return f"{key}{SESSIONS}{upload_id}/"


def _split_session(name: str) -> tuple[str, str, str] | None:
    """``<key>.~parts/<id>/<leaf>`` → (key, id, leaf); None for anything else."""
    key, sep, rest = name.rpartition(SESSIONS)
    upload_id, slash, leaf = rest.partition("/")
    if not sep or not slash or not upload_id or "/" in leaf:
        return None
    return key, upload_id, leaf


class GCSDriver:
    """One bucket through the JSON API; every method is thread-safe."""

    def __init__(
        self, bucket: str, config: GCSOptions, client: storage.Client | None = None
    ) -> None:
        self._config = config
        self._claims = uses_claims(config)
        self._client = client or make_client(config)
        self._bucket = self._client.bucket(bucket)
        self._limits = DriverLimits(
            min_part_size=1,  # composed objects have no minimum component size
            max_part_size=5 * 1024 * MiB,
            max_parts=10_000,
            default_part_size=config.part_size,
            default_concurrency=config.concurrency,
            metadata_bytes=8 * 1024,
            metadata_mutable=True,
            metadata_in_listing=True,
            # One ranged get per read, like the SDK's download_as_bytes: the Python transport
            # streams a response in small chunks under the GIL, so parallel ranges of one
            # object mostly contend (measured: 1 stream 530 MiB/s, 4 streams 166-259 MiB/s on
            # fake-gcs-server). The store option read_streams raises it.
            read_streams=1,
        )
        self._pool_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @property
    def limits(self) -> DriverLimits:
        return self._limits

    @property
    def client(self) -> storage.Client:
        """The SDK client (tests record its HTTP requests)."""
        return self._client

    @property
    def bucket_name(self) -> str:
        """The bucket this driver works on."""
        name: str = self._bucket.name
        return name

    # -- plumbing ---------------------------------------------------------------------------

    def _retry(self, attempts: _Attempts | None = None) -> Retry:
        """The retry policy, given explicitly to every call (conditional ones included)."""
        return Retry(
            predicate=is_transient,
            initial=0.2,
            maximum=8.0,
            multiplier=2.0,
            timeout=self._config.retry_deadline,
            on_error=attempts.on_error if attempts else None,
        )

    def _blob(self, key: str) -> storage.Blob:
        blob = self._bucket.blob(key, kms_key_name=self._config.kms_key_name)
        if self._config.storage_class:
            blob.storage_class = self._config.storage_class
        return blob

    def _call(self, what: str, fn: Callable[[], _T], condition: Condition = Condition.NONE) -> _T:
        try:
            return fn()
        except Exception as exc:  # the table decides
            raise_translated(exc, what, condition)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(2, self._config.concurrency),
                    thread_name_prefix="cargohold-gcs",
                )
            return self._pool

    # -- objects ----------------------------------------------------------------------------

    def put(
        self,
        key: str,
        data: bytes,
        *,
        precondition: Precondition | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        blob = self._blob(key)
        blob.metadata = dict(metadata) if metadata else None
        generation: int | None = None
        metageneration: int | None = None
        condition = Condition.NONE
        if precondition is CREATE_ONLY:
            generation, condition = 0, Condition.CREATE_ONLY
        elif isinstance(precondition, IfMatch):
            generation, metageneration = _match(precondition.etag, key)
            condition = Condition.IF_MATCH
        attempts = _Attempts()
        try:
            blob.upload_from_string(
                bytes(data),
                content_type=_CONTENT_TYPE,
                if_generation_match=generation,
                if_metageneration_match=metageneration,
                timeout=self._config.timeout,
                retry=self._retry(attempts),
            )
        except api.PreconditionFailed as exc:
            # A retried conditional write may have landed on an attempt whose answer was lost;
            # the 412 then comes from our own object. Same bytes and metadata == ours.
            if attempts.failed and self._is_same(key, data, metadata):
                return self.head(key).etag
            raise_translated(exc, key, condition)
        except Exception as exc:
            raise_translated(exc, key, condition)
        return _etag(blob)

    def _is_same(self, key: str, data: bytes, metadata: Mapping[str, str] | None) -> bool:
        blob = self._call(key, lambda: self._bucket.get_blob(key, retry=self._retry()))
        if blob is None:
            return False
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        return bool(
            blob.size == len(data)
            and blob.md5_hash == md5
            and dict(blob.metadata or {}) == dict(metadata or {})
        )

    def get(self, key: str) -> bytes:
        blob = self._bucket.blob(key)
        data: bytes = self._call(
            key,
            lambda: blob.download_as_bytes(
                raw_download=True, timeout=self._config.timeout, retry=self._retry()
            ),
        )
        return data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise InvalidArgumentError(f"{key}: negative offset or length")
        if length == 0:
            self.head(key)  # a missing key is still NotFound
            return b""
        blob = self._bucket.blob(key)
        try:
            data: bytes = blob.download_as_bytes(
                start=offset,
                end=offset + length - 1,
                raw_download=True,
                checksum=None,
                timeout=self._config.timeout,
                retry=self._retry(),
            )
        except api.RequestRangeNotSatisfiable:
            return b""  # at or past the end (or a 0-byte object)
        except Exception as exc:
            raise_translated(exc, key)
        return data

    def head(self, key: str) -> ObjectInfo:
        blob = self._call(
            key,
            lambda: self._bucket.get_blob(key, timeout=self._config.timeout, retry=self._retry()),
        )
        if blob is None:
            raise NotFoundError(f"{key} not found")
        return _info(blob)

    def _list_blobs(self, prefix: str, match_glob: str | None = None) -> Iterator[storage.Blob]:
        fields = "items(name,size,updated,generation,metageneration,metadata),nextPageToken"
        pages = self._call(
            prefix,
            lambda: self._client.list_blobs(
                self._bucket,
                prefix=prefix,
                fields=fields,
                match_glob=match_glob,
                page_size=1000,
                timeout=self._config.timeout,
                retry=self._retry(),
            ),
        )
        iterator = iter(pages)
        while True:
            try:
                blob = next(iterator)
            except StopIteration:
                return
            except Exception as exc:
                raise_translated(exc, f"list {prefix!r}")
            yield blob

    def list(self, prefix: str, *, metadata: bool = False) -> Iterator[ObjectInfo]:
        for blob in self._list_blobs(prefix):
            if SESSIONS not in blob.name:
                yield _info(blob, metadata=metadata)

    def delete(self, key: str, *, precondition: IfMatch | None = None) -> None:
        if_match = precondition.etag if precondition is not None else None
        generation, metageneration = _match(if_match, key) if if_match else (None, None)
        if if_match:
            # GCS enforces the conditions below; this check also holds where a server (the
            # emulator) ignores them on delete. It costs one metadata GET, and conditional
            # deletes are rare (releasing a lease).
            try:
                if self.head(key).etag != if_match:
                    raise FailedPreconditionError(f"{key}: etag does not match")
            except NotFoundError:
                return
        blob = self._bucket.blob(key)
        try:
            blob.delete(
                if_generation_match=generation,
                if_metageneration_match=metageneration,
                timeout=self._config.timeout,
                retry=self._retry(),
            )
        except api.NotFound:
            return
        except Exception as exc:
            raise_translated(exc, key, Condition.of(precondition))

    def copy(self, src: str, dst: str, *, precondition: CreateOnly | None = None) -> str:
        if precondition is not CREATE_ONLY:
            return self._rewrite(src, dst, None)
        with self._claim(dst):
            return self._rewrite(src, dst, 0)

    def _rewrite(self, src: str, dst: str, if_generation_match: int | None) -> str:
        source = self._bucket.blob(src)
        target = self._blob(dst)
        attempts = _Attempts()
        token: str | None = None
        try:
            while True:
                token, _, _ = target.rewrite(
                    source,
                    token=token,
                    if_generation_match=if_generation_match,
                    timeout=self._config.timeout,
                    retry=self._retry(attempts),
                )
                if token is None:
                    return _etag(target)
        except api.PreconditionFailed as exc:
            if attempts.failed and if_generation_match == 0:
                # A retried attempt met an object: ours, if the first attempt landed.
                current = self.head(dst)
                if self._claims or current.size == self.head(src).size:
                    return current.etag
            raise_translated(exc, dst, Condition.CREATE_ONLY)
        except api.NotFound as exc:
            raise NotFoundError(f"copy source {src} not found") from exc
        except Exception as exc:
            raise_translated(exc, f"copy {src} -> {dst}")

    def set_metadata(
        self, key: str, metadata: Mapping[str, str], *, precondition: IfMatch | None = None
    ) -> str:
        """Replace all user metadata with one ``objects.update`` (PUT); bytes stay untouched.

        ``IfMatch`` is the full etag: both the generation and the metageneration must match.
        """
        if_match = precondition.etag if precondition is not None else None
        generation, metageneration = _match(if_match, key) if if_match else (None, None)
        blob = self._bucket.blob(key)
        blob.metadata = dict(metadata)
        attempts = _Attempts()
        try:
            blob.update(
                if_generation_match=generation,
                if_metageneration_match=metageneration,
                timeout=self._config.timeout,
                retry=self._retry(attempts),
            )
        except api.PreconditionFailed as exc:
            if attempts.failed:
                current = self.head(key)
                if current.metadata == dict(metadata):
                    return current.etag
            raise_translated(exc, key, Condition.of(precondition))
        except Exception as exc:  # a 404 is NotFound, or a failed IfMatch when one was given
            raise_translated(exc, key, Condition.of(precondition))
        return _etag(blob)

    # -- create-only claims -----------------------------------------------------------------

    def _claim(self, key: str) -> contextlib.AbstractContextManager[object]:
        """A claim on ``key`` where the server ignores ``ifGenerationMatch`` on compose and
        rewrite; nothing where it enforces it (the real service)."""
        if not self._claims:
            return contextlib.nullcontext()
        return CommitClaim(
            self, key, f"{key}{SESSIONS}{_CLAIM}", self._config.claim_timeout, self._exists
        )

    # -- upload sessions --------------------------------------------------------------------

    def start_upload(self, key: str) -> str:
        upload_id = uuid.uuid4().hex
        marker = _session_prefix(key, upload_id) + _SESSION_MARKER
        self.put(marker, b"", precondition=CREATE_ONLY)
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        if not 1 <= number <= self._limits.max_parts:
            raise InvalidArgumentError(f"part number {number} out of range")
        name = f"{_session_prefix(key, upload_id)}{number:05d}"
        blob = self._bucket.blob(name)
        self._call(
            name,
            lambda: blob.upload_from_string(
                bytes(data),
                content_type=_CONTENT_TYPE,
                timeout=self._config.timeout,
                retry=self._retry(),
            ),
        )
        return Part(number, len(data), str(blob.generation))

    def _session(self, key: str, upload_id: str) -> tuple[bool, dict[int, storage.Blob]]:
        """(marker present, parts by number) of one session, from one listing."""
        marker = False
        parts: dict[int, storage.Blob] = {}
        for blob in self._list_blobs(_session_prefix(key, upload_id)):
            leaf = blob.name.rsplit("/", 1)[1]
            if leaf == _SESSION_MARKER:
                marker = True
            elif leaf.isdigit():
                parts[int(leaf)] = blob
        return marker, parts

    def list_parts(self, key: str, upload_id: str) -> _Parts:
        marker, parts = self._session(key, upload_id)
        if not marker:
            raise NotFoundError(f"upload {upload_id} for {key} not found")
        return [Part(n, int(b.size or 0), str(b.generation)) for n, b in sorted(parts.items())]

    def complete_upload(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[Part],
        *,
        precondition: CreateOnly | None = None,
    ) -> str:
        marker, held = self._session(key, upload_id)
        if not marker:
            raise NotFoundError(f"upload {upload_id} for {key} not found")
        sources: _Sources = []
        for part in parts:
            blob = held.get(part.number)
            if blob is None or str(blob.generation) != part.etag:
                raise FailedPreconditionError(
                    f"part {part.number} of {key} is missing or was replaced"
                )
            sources.append((blob.name, int(blob.generation)))
        if not sources:
            etag = self.put(key, b"", precondition=precondition)
        elif precondition is CREATE_ONLY:
            size = sum(int(held[part.number].size or 0) for part in parts)
            with self._claim(key):
                etag = self._compose_all(key, upload_id, sources, create_only=True, size=size)
        else:
            etag = self._compose_all(key, upload_id, sources, create_only=False)
        self.abort_upload(key, upload_id)
        return etag

    def _compose_all(
        self, key: str, upload_id: str, sources: _Sources, *, create_only: bool, size: int = -1
    ) -> str:
        """Compose in rounds of 32 into temporaries until one call can build ``key``."""
        level = 0
        while len(sources) > _COMPOSE_MAX:
            groups = [sources[i : i + _COMPOSE_MAX] for i in range(0, len(sources), _COMPOSE_MAX)]
            names = [
                f"{_session_prefix(key, upload_id)}c{level:02d}-{i:05d}" for i in range(len(groups))
            ]
            results = self._executor().map(
                lambda pair: self._compose(pair[0], pair[1], None), zip(names, groups, strict=True)
            )
            sources = [
                (name, int(_match(etag, name)[0]))
                for name, etag in zip(names, results, strict=True)
            ]
            level += 1
        return self._compose(key, sources, 0 if create_only else None, size)

    def _compose(
        self, target: str, sources: _Sources, if_generation_match: int | None, size: int = -1
    ) -> str:
        """Compose ``sources`` into ``target``; ``size``: the result's, to know a retry's own."""
        blob = self._blob(target)
        blob.content_type = _CONTENT_TYPE
        attempts = _Attempts()
        try:
            blob.compose(
                [self._bucket.blob(name) for name, _ in sources],
                if_generation_match=if_generation_match,
                if_source_generation_match=[generation for _, generation in sources],
                timeout=self._config.timeout,
                retry=self._retry(attempts),
            )
        except api.PreconditionFailed as exc:
            # 412 names either the target (create-only) or a replaced source part.
            current = self._head_or_none(target) if if_generation_match == 0 else None
            if current is not None:
                # A retried compose that met an object: ours if its first attempt landed
                # (certain under a claim; without one, a racer's would differ in size).
                if attempts.failed and (self._claims or current.size == size):
                    return current.etag
                raise AlreadyExistsError(f"{target} already exists") from exc
            raise FailedPreconditionError(f"a part of {target} was replaced") from exc
        except api.NotFound as exc:
            raise FailedPreconditionError(f"a part of {target} is missing") from exc
        except Exception as exc:
            raise_translated(exc, target)
        return _etag(blob)

    def _exists(self, key: str) -> bool:
        return self._head_or_none(key) is not None

    def _head_or_none(self, key: str) -> ObjectInfo | None:
        try:
            return self.head(key)
        except NotFoundError:
            return None

    def abort_upload(self, key: str, upload_id: str) -> None:
        names = [b.name for b in self._list_blobs(_session_prefix(key, upload_id))]
        # Markers last: a session whose deletion was interrupted stays listed and abortable.
        names.sort(key=lambda name: name.endswith("/" + _SESSION_MARKER))
        parts = [n for n in names if not n.endswith("/" + _SESSION_MARKER)]
        list(self._executor().map(self.delete, parts))
        for name in names[len(parts) :]:
            self.delete(name)

    def list_uploads(self, prefix: str) -> Iterator[UploadInfo]:
        seen: set[tuple[str, str]] = set()
        for blob in self._list_blobs(prefix, match_glob=f"**{SESSIONS}**"):
            split = _split_session(blob.name)
            if split is None or (split[0], split[1]) in seen:
                continue
            key, upload_id, _ = split
            seen.add((key, upload_id))
            initiated = blob.updated.astimezone(UTC) if blob.updated else None
            yield UploadInfo(key, upload_id, initiated)

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        http = getattr(self._client, "_http_internal", None)
        if isinstance(http, requests.Session):
            http.close()


def from_url(url: SplitResult, options: dict[str, Any]) -> OpenedDriver:
    """``gs://bucket/prefix`` (also ``gcs://``).

    Options (read by ``client.GCSOptions``): ``project``, ``endpoint_url``, ``part_size``,
    ``concurrency``, ``storage_class``, ``kms_key_name``, ``timeout``, ``retry_deadline``,
    ``claim_timeout``.
    """
    bucket = url.netloc
    if not bucket:
        raise InvalidArgumentError(f"{url.scheme}:// URL needs a bucket: {url.geturl()!r}")
    config = options_from(options, url.scheme)
    return OpenedDriver(GCSDriver(bucket, config), url.path.strip("/"))
