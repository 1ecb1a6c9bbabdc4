"""The content store: containerd's ``content.Store`` contract, written once over any driver.

Layout under the store's prefix (see docs/architecture.md):

* ``blobs/<alg>/<hex>``: committed blobs; the bytes under a digest key always hash to it.
* ``blobs/<alg>/<hex>.labels``: label records, for drivers that keep them in sidecars.
* ``ingest/<sha256(ref)>/{state,lock,data}``: ingestions (see ``ingest`` and ``locks``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from .content import ReaderAt
from .digests import Digest, Hasher, new_hasher, parse_digest
from .drivers.base import Driver, ObjectInfo
from .drivers.wrapper import MeteredDriver
from .errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
)
from .filters import Filter, info_adaptor, parse_filters, status_adaptor
from .ingest import Writer
from .ingest_state import (
    IngestRecord,
    decode_state,
    encode_hash_state,
    encode_state,
    hasher_for,
    holds_record,
    utcnow,
)
from .labels import SIDECAR_SUFFIX, LabelRecord, LabelStore, check_fieldpaths, validate_labels
from .locks import DEFAULT_LEASE_TIMEOUT, LeaseManager
from .types import Descriptor, Info, Status

__all__ = ["MAX_REF_BYTES", "Store"]

MAX_REF_BYTES = 4096
_STATE_HEAD = 64 * 1024
_BUSY_WAIT = 0.5
_log = logging.getLogger("cargohold.store")


def validate_ref(ref: object) -> str:
    """A ref is any non-empty string of at most 4096 UTF-8 bytes."""
    if not isinstance(ref, str):
        raise InvalidArgumentError(f"ref must be a string, got {type(ref).__name__}")
    if not ref:
        raise InvalidArgumentError("ref must not be empty")
    try:
        size = len(ref.encode())
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError("ref is not valid UTF-8") from exc
    if size > MAX_REF_BYTES:
        raise InvalidArgumentError(f"ref is {size} bytes long; the limit is {MAX_REF_BYTES}")
    return ref


def _digest_of(value: Descriptor | str) -> Digest:
    if isinstance(value, Descriptor):
        return parse_digest(value.digest)
    return parse_digest(value)


class Store:
    """A content store on one driver; thread-safe. Open one with ``cargohold.open_store``."""

    def __init__(
        self,
        driver: Driver,
        prefix: str = "",
        *,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
        part_size: int | None = None,
        concurrency: int | None = None,
        read_streams: int | None = None,
    ) -> None:
        limits = driver.limits
        self.driver = driver if isinstance(driver, MeteredDriver) else MeteredDriver(driver)
        self.prefix = prefix.strip("/")
        self._root = f"{self.prefix}/" if self.prefix else ""
        self.lease_timeout = float(lease_timeout)
        self.part_size = max(part_size or limits.default_part_size, limits.min_part_size)
        if self.part_size > limits.max_part_size:
            raise InvalidArgumentError(
                f"part_size {self.part_size} exceeds the service's maximum {limits.max_part_size}"
            )
        self.concurrency = max(1, concurrency or limits.default_concurrency)
        self.read_streams = max(1, read_streams or limits.read_streams or self.concurrency)
        self.leases = LeaseManager(self.driver, self.lease_timeout)
        self.labels = LabelStore(self.driver)
        self.executor = ThreadPoolExecutor(
            max_workers=max(8, self.concurrency * 4), thread_name_prefix="cargohold"
        )
        self.clock = time.monotonic
        # Writers of this process by ref, held weakly: a writer nobody holds any more (its
        # caller was interrupted before it could close it) is collected, and its lease with
        # it, so the ref does not stay locked while this process lives (see ``locks``).
        # A leaf lock: held only to read or change ``_writers``, never across a call.
        self._writers: weakref.WeakValueDictionary[str, Writer] = weakref.WeakValueDictionary()
        self._writers_lock = threading.Lock()
        self._writers_changed = threading.Condition(self._writers_lock)

    # -- keys ----------------------------------------------------------------------------

    def blob_key(self, digest: Digest) -> str:
        return f"{self._root}blobs/{digest.algorithm}/{digest.hex}"

    def _ingest_dir(self, ref: str) -> str:
        return f"{self._root}ingest/{hashlib.sha256(ref.encode()).hexdigest()}"

    def upload_key(self, ref: str, expected: str) -> str:
        """Where an ingestion's upload session assembles its bytes."""
        if expected:
            return self.blob_key(parse_digest(expected))
        return f"{self._ingest_dir(ref)}/data"

    # -- Provider ------------------------------------------------------------------------

    def _info(self, digest: Digest, obj: ObjectInfo, record: LabelRecord | None) -> Info:
        if record is None:
            when = self.labels.object_time(obj)
            return Info(str(digest), obj.size, when, when, {})
        return Info(str(digest), obj.size, record.created, record.updated, dict(record.labels))

    def _head_blob(self, digest: Digest) -> ObjectInfo:
        try:
            return self.driver.head(self.blob_key(digest))
        except NotFoundError as exc:
            raise NotFoundError(f"content {digest} not found") from exc

    def info(self, digest: str) -> Info:
        """The blob's size, times and labels."""
        parsed = parse_digest(digest)
        obj = self._head_blob(parsed)
        return self._info(parsed, obj, self.labels.from_object(obj, None))

    def reader_at(self, desc: Descriptor | str) -> ReaderAt:
        """A random-access reader of a committed blob."""
        digest = _digest_of(desc)
        obj = self._head_blob(digest)
        return ReaderAt(
            self.driver, obj.key, obj.size, self.executor, self.part_size, self.read_streams
        )

    def blob_exists(self, key: str) -> bool:
        try:
            self.driver.head(key)
        except NotFoundError:
            return False
        return True

    # -- Manager -------------------------------------------------------------------------

    def update(self, info: Info, *fieldpaths: str) -> Info:
        """Replace labels (no fieldpaths or ``labels``) or set/delete ``labels.<key>``."""
        if not isinstance(info, Info):
            raise InvalidArgumentError(f"update needs an Info, got {type(info).__name__}")
        parsed = parse_digest(info.digest)
        wanted = validate_labels(info.labels)
        check_fieldpaths(tuple(fieldpaths))  # before any request: bad input changes nothing
        try:
            obj, record = self.labels.update(
                self.blob_key(parsed), wanted, tuple(fieldpaths), utcnow()
            )
        except NotFoundError as exc:
            raise NotFoundError(f"content {parsed} not found") from exc
        return self._info(parsed, obj, record)

    def walk(self, *filters: str) -> Iterator[Info]:
        """Every committed blob that matches any of ``filters`` (containerd's filter syntax)."""
        matcher = parse_filters(*filters)
        return self._walk(matcher)

    def _walk(self, matcher: Filter) -> Iterator[Info]:
        """Blobs in listing order; label records that need a request of their own (sidecars)
        are fetched ahead in parallel, at most ``_walk_window`` at a time, so a walk costs its
        listing pages plus about ⌈labelled / window⌉ round trips."""
        window = self._walk_window()
        ahead: deque[tuple[Digest, ObjectInfo, Future[LabelRecord | None] | None, bool]] = deque()

        def settle() -> Iterator[Info]:
            digest, obj, fetched, has_sidecar = ahead.popleft()
            record = (
                fetched.result()
                if fetched is not None
                else self.labels.from_object(obj, has_sidecar)
            )
            info = self._info(digest, obj, record)
            if matcher.match(info_adaptor(info)):
                yield info

        for digest, obj, has_sidecar in self._listed_blobs():
            fetched = None
            if self.labels.needs_request(obj, has_sidecar):
                fetched = self.executor.submit(self.labels.from_object, obj, has_sidecar)
            ahead.append((digest, obj, fetched, has_sidecar))
            while ahead and (len(ahead) > window or ahead[0][2] is None):
                yield from settle()
        while ahead:
            yield from settle()

    def _walk_window(self) -> int:
        return max(4, self.concurrency * 2)

    def _listed_blobs(self) -> Iterator[tuple[Digest, ObjectInfo, bool]]:
        """Every blob in one listing of ``blobs/``, with whether a label sidecar follows it.

        A sidecar's key is its blob's key + ``.labels``, so it comes right after the blob in
        the listing's lexicographic order: one item of lookahead is enough.
        """
        base = f"{self._root}blobs/"
        pending: tuple[Digest, ObjectInfo] | None = None
        for obj in self.driver.list(base, metadata=self.labels.wants_listing_metadata()):
            if obj.key.endswith(SIDECAR_SUFFIX):
                if pending is not None and pending[1].key + SIDECAR_SUFFIX == obj.key:
                    yield pending[0], pending[1], True
                    pending = None
                continue
            if pending is not None:
                yield pending[0], pending[1], False
                pending = None
            try:
                digest = parse_digest(obj.key[len(base) :].replace("/", ":", 1))
            except InvalidArgumentError:
                continue  # not a blob of ours
            pending = (digest, obj)
        if pending is not None:
            yield pending[0], pending[1], False

    def delete(self, digest: str) -> None:
        """Remove a blob and its labels."""
        obj = self._head_blob(parse_digest(digest))
        self.labels.delete(obj)
        self.driver.delete(obj.key)

    # -- Ingester ------------------------------------------------------------------------

    def writer(
        self, ref: str, desc: Descriptor | None = None, *, hint: str = "", wait: float = 0.0
    ) -> Writer:
        """Open (or resume) the ingestion ``ref``; UnavailableError while another writer has it.

        ``hint`` is a digest the bytes will probably have, when ``desc`` names none (containerd's
        refs often name one). A new ingestion then uploads its parts for that digest's key,
        which saves the copy from a staging key at commit; if the bytes turn out to have another
        digest, that commit fails with FailedPreconditionError and the ingestion restarts from
        zero without the hint (see ``ingest``). A hint in another algorithm than the ingestion's
        is ignored; a resumed ingestion keeps what it was started with.

        ``wait`` is how many seconds to wait for a writer of this process that holds ``ref`` to
        close (a client that closes a writer and reopens its ref at once, as containerd's proxy
        does, may otherwise find it still closing). Writers elsewhere are never waited for.
        When an existing ingestion cannot be resumed, the writer starts from zero and says why
        in ``restart_reason``.
        """
        validate_ref(ref)
        if desc is None:
            desc = Descriptor()
        if not isinstance(desc, Descriptor):
            raise InvalidArgumentError(f"desc must be a Descriptor, got {type(desc).__name__}")
        if not isinstance(desc.size, int) or desc.size < 0:
            raise InvalidArgumentError(f"descriptor size must be a non-negative int: {desc.size!r}")
        expected = str(parse_digest(desc.digest)) if desc.digest else ""
        hint = str(parse_digest(hint)) if hint else ""
        if expected and self.blob_exists(self.blob_key(parse_digest(expected))):
            raise AlreadyExistsError(f"content {expected} already exists")
        if wait > 0:
            self._wait_for_local_writer(ref, wait)
        lease = self.leases.acquire(f"{self._ingest_dir(ref)}/lock")
        try:
            record, tail, hasher, reason = self._open_ingestion(ref, desc.size, expected, hint)
            writer = Writer(self, ref, lease, record, tail, hasher, restart_reason=reason)
            with self._writers_lock:
                self._writers[ref] = writer
        except BaseException:
            self.leases.release(lease)
            raise
        if reason is not None:
            _log.warning("ingestion %r restarts from zero: %s", ref, reason)
        return writer

    def _wait_for_local_writer(self, ref: str, seconds: float) -> None:
        """Wait (bounded) until no writer of this process holds ``ref``.

        A writer that is closing is waited for up to ``seconds``; one still in use only up to
        ``_BUSY_WAIT``, so that a ref that is really taken is reported Unavailable quickly.
        """
        start = self.clock()
        with self._writers_changed:
            while (live := self._writers.get(ref)) is not None:
                limit = seconds if live.closing else min(seconds, _BUSY_WAIT)
                remaining = start + limit - self.clock()
                if remaining <= 0:
                    return
                self._writers_changed.wait(min(remaining, 0.05))

    def _open_ingestion(
        self, ref: str, total: int, expected: str, hint: str = ""
    ) -> tuple[IngestRecord, bytes, Hasher, str | None]:
        loaded = self.load_state(ref, with_tail=True)
        started = utcnow().isoformat()
        reason: str | None = None
        if loaded is not None:
            record, tail = loaded
            same = (not total or total == record.total) and (
                not expected or expected == record.expected
            )
            if same:
                resumed, reason = self._resume(record, tail)
                if resumed is not None:
                    return record, tail, resumed, None
            self.drop_session(record)
            if same:
                # Not a different blob, only an unusable resume point: start over from zero
                # but keep what the ingestion was started with.
                total, expected = record.total, record.expected
                hint, started = record.hint, record.started_at
                if record.offset == 0 and not record.parts:
                    reason = None  # nothing was lost
        algorithm = parse_digest(expected).algorithm if expected else "sha256"
        if expected or (hint and parse_digest(hint).algorithm != algorithm):
            hint = ""  # an expected digest binds the key anyway; a hint must be comparable
        record = IngestRecord(
            ref=ref,
            total=total,
            expected=expected,
            started_at=started,
            updated_at=started,
            algorithm=algorithm,
            part_size=self.part_size,
            hint=hint,
        )
        hasher = new_hasher(record.algorithm)
        record.hash_state = encode_hash_state(hasher.state())
        self.save_state(ref, record, b"")
        return record, b"", hasher, reason

    def _resume(self, record: IngestRecord, tail: bytes) -> tuple[Hasher | None, str | None]:
        """The hasher to continue ``record`` with, or None and why it cannot be trusted."""
        hasher, problem = hasher_for(record, tail)
        if hasher is None:
            return None, problem
        if record.staged:
            assert record.upload_key is not None
            try:
                size = self.driver.head(record.upload_key).size
            except NotFoundError:
                return None, "its assembled bytes are gone"
            if size != record.offset:
                return None, f"its assembled bytes are {size} long, not {record.offset}"
            return hasher, None
        if record.upload_id is None:
            return hasher, None
        assert record.upload_key is not None
        try:
            held = {
                p.number: p for p in self.driver.list_parts(record.upload_key, record.upload_id)
            }
        except NotFoundError:
            return None, "its upload session is gone"
        for number, _size, etag in record.parts:
            part = held.get(int(number))
            if part is None or part.etag != etag:
                return None, f"part {number} of its upload session is missing or changed"
        return hasher, None

    # -- ingestion bookkeeping (used by Writer) ------------------------------------------

    def save_state(self, ref: str, record: IngestRecord, tail: bytes) -> None:
        self.driver.put(f"{self._ingest_dir(ref)}/state", encode_state(record, tail))

    def load_state(self, ref: str, *, with_tail: bool) -> tuple[IngestRecord, bytes] | None:
        return self._load_state_key(f"{self._ingest_dir(ref)}/state", with_tail=with_tail)

    def _load_state_key(self, key: str, *, with_tail: bool) -> tuple[IngestRecord, bytes] | None:
        """Read a state object; without the tail, a ranged read of its head usually suffices."""
        try:
            if with_tail:
                return decode_state(self.driver.get(key))
            raw = self.driver.get_range(key, 0, _STATE_HEAD)
            if not holds_record(raw):
                raw = self.driver.get(key)
        except NotFoundError:
            return None
        return decode_state(raw)[0], b""

    def drop_session(self, record: IngestRecord) -> None:
        """Abort an ingestion's upload session and staged data, if any."""
        if record.upload_id and record.upload_key:
            self.driver.abort_upload(record.upload_key, record.upload_id)
        if record.upload_key and record.staged:
            self.driver.delete(record.upload_key)

    def remove_ingestion(self, ref: str, record: IngestRecord) -> None:
        self.drop_session(record)
        self.driver.delete(f"{self._ingest_dir(ref)}/state")

    def release_writer(self, writer: Writer) -> None:
        self.leases.release(writer.lease)
        with self._writers_changed:
            if self._writers.get(writer.ref) is writer:
                del self._writers[writer.ref]
                self._writers_changed.notify_all()

    # -- IngestManager -------------------------------------------------------------------

    def status(self, ref: str) -> Status:
        """The status of ingestion ``ref``."""
        validate_ref(ref)
        with self._writers_lock:
            live = self._writers.get(ref)
        if live is not None:
            return live.status()
        loaded = self.load_state(ref, with_tail=False)
        if loaded is None:
            raise NotFoundError(f"no ingestion for ref {ref!r}")
        return loaded[0].status()

    def list_statuses(self, *filters: str) -> list[Status]:
        """Statuses of every ingestion matching any of ``filters``."""
        matcher = parse_filters(*filters)
        with self._writers_lock:
            writers = list(self._writers.items())
        live = {ref: w.status() for ref, w in writers}  # snapshots: no lock, no wait
        found: list[Status] = []
        for obj in self.driver.list(f"{self._root}ingest/"):
            if not obj.key.endswith("/state"):
                continue
            loaded = self._load_state_key(obj.key, with_tail=False)
            if loaded is None:
                continue
            status = live.get(loaded[0].ref, loaded[0].status())
            if matcher.match(status_adaptor(status)):
                found.append(status)
        return found

    def abort(self, ref: str) -> None:
        """Remove the ingestion and everything uploaded for it."""
        validate_ref(ref)
        base = self._ingest_dir(ref)
        loaded = self.load_state(ref, with_tail=False)
        with self._writers_changed:
            live = self._writers.pop(ref, None)
            self._writers_changed.notify_all()
        if live is not None:
            live.mark_aborted()
        if loaded is None:
            if not self.blob_exists(f"{base}/lock"):
                raise NotFoundError(f"no ingestion for ref {ref!r}")
        else:
            self.drop_session(loaded[0])
            self.driver.delete(f"{base}/state")
        self.driver.delete(f"{base}/data")
        self.driver.delete(f"{base}/lock")
        if live is not None:
            self.leases.release(live.lease)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop background threads and release the driver (open writers are not closed)."""
        self.leases.close()
        self.executor.shutdown(wait=True)
        self.driver.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_blobs(self) -> Iterator[tuple[str, int]]:
        """Every committed blob as ``(digest, size)``, from listing pages alone: no label
        requests (``walk`` gives labels). What a copy lists to learn what a store lacks."""
        for digest, obj, _has_sidecar in self._listed_blobs():
            yield str(digest), obj.size
