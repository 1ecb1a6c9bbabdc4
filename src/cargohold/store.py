"""The content store: containerd's ``content.Store`` contract, written once over any driver.

Every key comes from ``layout.Layout`` (see docs/architecture.md): committed blobs under
``blobs/<alg>/<hex>``, label sidecars next to them, ingestions under ``ingest/<sha256(ref)>/``.
Ingestions themselves (writers, their saved state, statuses, abort) live in ``ingest``, which
works on the ``IngestContext`` this store builds and never imports this module.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from .beside import Beside
from .content import ReaderAt
from .digests import Digest, parse_digest
from .drivers.base import Driver, ObjectInfo
from .drivers.wrapper import MeteredDriver
from .errors import InvalidArgumentError, NotFoundError
from .filters import Filter, info_adaptor, parse_filters, status_adaptor
from .ingest import IngestContext, Writer, WriterRegistry
from .ingest.manager import abort_ingestion, ingestion_status, list_ingestions, open_writer
from .ingest.state import utcnow
from .labels import LabelRecord, LabelStore, check_fieldpaths, validate_labels
from .layout import SIDECAR_SUFFIX, Layout
from .locks import DEFAULT_LEASE_TIMEOUT, LeaseManager
from .names import NameStore
from .types import Descriptor, Info, Status

__all__ = ["MAX_REF_BYTES", "Store"]

MAX_REF_BYTES = 4096


_WALK_AHEAD = 10_000
"""Listed blobs a walk holds at most while label fetches ahead of them are unfinished."""


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
    """A content store on one driver; thread-safe. Open one with ``cargohold.open_store``.

    Its API is containerd's: ``info``, ``update``, ``walk``, ``delete``, ``reader_at``
    (Provider and Manager), ``writer`` (Ingester), ``status``, ``list_statuses``, ``abort``
    (IngestManager), plus ``close`` and use as a context manager. Beyond it, these attributes
    are public and used by the CLI, the plugin, the helpers, tests and benchmarks:

    * ``driver``: the (metered) driver, for driver-level checks and request counts.
    * ``prefix`` and ``layout``: where the store lives, and every key it uses.
    * ``part_size``, ``concurrency``, ``read_streams``, ``lease_timeout``: the settings.
    * ``executor``: the store's thread pool (readers and part uploads run on it).
    * ``leases`` and ``labels``: the ref leases and where labels are kept.
    * ``names``: the store's image names (``index.json``; see ``names``).
    * ``clock``: the monotonic clock of checkpoints and bounded waits (tests replace it).
    * ``list_blobs()``: every blob's digest and size from listing pages alone (image copy).
    """

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
        self.layout = Layout(self.prefix)
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
        self.names = NameStore(self.driver, self.layout)
        self.executor = ThreadPoolExecutor(
            max_workers=max(8, self.concurrency * 4), thread_name_prefix="cargohold"
        )
        self._ingest = IngestContext(
            driver=self.driver,
            executor=self.executor,
            leases=self.leases,
            labels=self.labels,
            layout=self.layout,
            part_size=self.part_size,
            concurrency=self.concurrency,
            lease_timeout=self.lease_timeout,
            writers=WriterRegistry(),
            clock=time.monotonic,
        )

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock writers opened from now on use."""
        return self._ingest.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._ingest = replace(self._ingest, clock=clock)

    # -- Provider ------------------------------------------------------------------------

    def _info(self, digest: Digest, obj: ObjectInfo, record: LabelRecord | None) -> Info:
        if record is None:
            when = self.labels.object_time(obj)
            return Info(str(digest), obj.size, when, when, {})
        return Info(str(digest), obj.size, record.created, record.updated, dict(record.labels))

    def _head_blob(self, digest: Digest) -> ObjectInfo:
        try:
            return self.driver.head(self.layout.blob_key(digest))
        except NotFoundError as exc:
            raise NotFoundError(f"content {digest} not found") from exc

    def info(self, digest: str, *, expect_present: bool = False) -> Info:
        """The blob's size, times and labels.

        ``expect_present``: the caller has reason to think the blob exists (it committed or
        read it lately). Where labels live in a sidecar, which a head cannot rule out, the
        sidecar's get then goes out beside the head instead of after it: one round trip, not
        two, for the same two requests and the same answer; a blob found missing costs the
        sidecar's get more. Without it, a missing blob costs its head alone.
        """
        parsed = parse_digest(digest)
        if not expect_present or self.labels.inline:
            obj = self._head_blob(parsed)
            return self._info(parsed, obj, self.labels.from_object(obj, None))
        key = self.layout.blob_key(parsed)
        sidecar = Beside(self.executor, functools.partial(self.labels.sidecar_record, key))
        try:
            obj = self._head_blob(parsed)
        except BaseException:
            sidecar.settle(0)  # not waited for: its answer is not needed
            raise
        return self._info(parsed, obj, sidecar.result())

    def reader_at(
        self, desc: Descriptor | str, *, window: int | None = None, size: int | None = None
    ) -> ReaderAt:
        """A random-access reader of a committed blob.

        ``window``: the read-ahead's window (and ranged get) size, the store's part size by
        default. A caller that reads in fixed pieces passes their size: a sequential read of
        exactly one aligned window is then the fetched bytes themselves, not a copy of a slice.
        ``size``: the blob's size, when the caller has just learnt it (an ``info``): the head
        that finds the size and checks the blob exists is skipped, and a blob deleted
        meanwhile is found missing (NotFoundError) by the first read instead.
        """
        if window is not None and window <= 0:
            raise InvalidArgumentError(f"window must be positive, got {window}")
        if size is not None and size < 0:
            raise InvalidArgumentError(f"size must not be negative, got {size}")
        digest = _digest_of(desc)
        if size is None:
            obj = self._head_blob(digest)
            key, size = obj.key, obj.size
        else:
            key = self.layout.blob_key(digest)
        return ReaderAt(
            self.driver, key, size, self.executor, window or self.part_size, self.read_streams
        )

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
                self.layout.blob_key(parsed), wanted, tuple(fieldpaths), utcnow()
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
        are fetched ahead in parallel, at most ``_walk_window`` at a time however sparse they
        are among the blobs, so a walk costs its listing pages plus about
        ⌈labelled / window⌉ round trips. At most ``_WALK_AHEAD`` listed blobs wait behind an
        unfinished fetch."""
        window = self._walk_window()
        ahead: deque[tuple[Digest, ObjectInfo, Future[LabelRecord | None] | None, bool]] = deque()
        fetching = 0

        def settle() -> Iterator[Info]:
            nonlocal fetching
            digest, obj, fetched, has_sidecar = ahead.popleft()
            if fetched is not None:
                fetching -= 1
                record = fetched.result()
            else:
                record = self.labels.from_object(obj, has_sidecar)
            info = self._info(digest, obj, record)
            if matcher.match(info_adaptor(info)):
                yield info

        for digest, obj, has_sidecar in self._listed_blobs():
            fetched = None
            if self.labels.needs_request(obj, has_sidecar):
                fetched = self.executor.submit(self.labels.from_object, obj, has_sidecar)
                fetching += 1
            ahead.append((digest, obj, fetched, has_sidecar))
            while ahead and (fetching > window or len(ahead) > _WALK_AHEAD or ahead[0][2] is None):
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
        pending: tuple[Digest, ObjectInfo] | None = None
        for obj in self.driver.list(
            self.layout.blobs, metadata=self.labels.wants_listing_metadata()
        ):
            if obj.key.endswith(SIDECAR_SUFFIX):
                if pending is not None and pending[1].key + SIDECAR_SUFFIX == obj.key:
                    yield pending[0], pending[1], True
                    pending = None
                continue
            if pending is not None:
                yield pending[0], pending[1], False
                pending = None
            digest = self.layout.digest_of(obj.key)
            if digest is None:
                continue  # not a blob of ours
            pending = (digest, obj)
        if pending is not None:
            yield pending[0], pending[1], False

    def list_blobs(self) -> Iterator[tuple[str, int]]:
        """Every committed blob as ``(digest, size)``, from listing pages alone: no label
        requests (``walk`` gives labels). What a copy lists to learn what a store lacks."""
        for digest, obj, _has_sidecar in self._listed_blobs():
            yield str(digest), obj.size

    def delete(self, digest: str) -> None:
        """Remove a blob and its labels."""
        obj = self._head_blob(parse_digest(digest))
        self.labels.delete(obj)
        self.driver.delete(obj.key)

    # -- Ingester ------------------------------------------------------------------------

    def writer(
        self,
        ref: str,
        desc: Descriptor | None = None,
        *,
        hint: str = "",
        wait: float = 0.0,
        known_absent: bool = False,
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

        ``known_absent`` says the caller has just seen that ``desc``'s blob is not stored (a
        copy that listed the store): the open then skips asking (one request less), and a blob
        that appeared meanwhile is reported AlreadyExistsError by the commit instead.
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
        return open_writer(
            self._ingest, ref, desc.size, expected, hint, wait, check_exists=not known_absent
        )

    # -- IngestManager -------------------------------------------------------------------

    def status(self, ref: str) -> Status:
        """The status of ingestion ``ref``."""
        validate_ref(ref)
        return ingestion_status(self._ingest, ref)

    def list_statuses(self, *filters: str) -> list[Status]:
        """Statuses of every ingestion matching any of ``filters``."""
        matcher = parse_filters(*filters)
        return [s for s in list_ingestions(self._ingest) if matcher.match(status_adaptor(s))]

    def abort(self, ref: str) -> None:
        """Remove the ingestion and everything uploaded for it."""
        validate_ref(ref)
        abort_ingestion(self._ingest, ref)

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
