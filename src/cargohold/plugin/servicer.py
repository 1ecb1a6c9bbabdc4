"""The gRPC servicer: containerd's content service over a cargohold store and one node's holdings.

Blob reads and writes see the whole store (a blob any node uploaded is reused, never uploaded
again); List, ListStatuses, Delete and Abort act on what this node holds (see ownership.py).
Every handler ends with a status from the one error table in codes.py.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import replace
from typing import Any, TypeVar

import grpc
from google.protobuf.empty_pb2 import Empty

from ..beside import Beside
from ..errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from ..filters import parse_filters, status_adaptor
from ..ingest import Writer as ContentWriter
from ..store import Store as ContentStore
from ..types import Descriptor
from .codes import OutOfRangeError, status_for
from .convert import info_from_pb, info_to_pb, status_to_pb, timestamp
from .gen import content_pb2 as pb
from .gen import content_pb2_grpc as pb_grpc
from .ownership import Holdings
from .readcache import shared_readers
from .refs import digest_hint
from .registration import Undecodable

__all__ = ["READ_CHUNK", "ContentServicer"]

_log = logging.getLogger("cargohold.plugin")

READ_CHUNK = 1024 * 1024
"""Bytes per Read response message (gRPC's default message limit is 4 MiB)."""
LIST_BATCH = 512
"""Infos per List response message."""
REOPEN_WAIT = 10.0
"""Seconds a Write stream waits for this server's previous stream on the same ref to close.
containerd's proxy writer closes by half-closing its stream and returns at once, so a client
that reopens the ref right away can arrive while the old stream is still being closed here.
A writer still in use is waited for only briefly (see ``Store.writer``)."""

_T = TypeVar("_T")


def _parsed(request: Any) -> Any:
    """``request`` itself; a message grpcio could not parse becomes InvalidArgument here, and
    a stream of requests is checked message by message as it is read."""
    if isinstance(request, Undecodable):
        raise InvalidArgumentError(f"malformed request message: {request.reason}")
    if isinstance(request, Iterator):
        return (_parsed(item) for item in request)
    return request


def _rpc(method: Callable[..., _T]) -> Callable[..., _T]:
    """End the RPC with the mapped status code when the handler raises."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: ContentServicer, request: Any, context: grpc.ServicerContext) -> _T:
        try:
            return method(self, _parsed(request), context)
        except Exception as exc:  # the one place errors become gRPC statuses
            code, message = status_for(exc, name)
            context.abort(code, message)
            raise  # unreachable: abort raises

    return wrapper


def _stream(method: Callable[..., Iterator[_T]]) -> Callable[..., Iterator[_T]]:
    """Like ``_rpc`` for handlers that yield responses."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: ContentServicer, request: Any, context: grpc.ServicerContext) -> Iterator[_T]:
        try:
            yield from method(self, _parsed(request), context)
        except Exception as exc:
            code, message = status_for(exc, name)
            context.abort(code, message)

    return wrapper


class ContentServicer(pb_grpc.ContentServicer):
    """containerd.services.content.v1.Content for one node over one store."""

    def __init__(
        self, store: ContentStore, holdings: Holdings, write_pool: Executor | None
    ) -> None:
        self._store = store
        self._holdings = holdings
        self._write_pool = write_pool
        self._readers = shared_readers(store)
        self._writers: set[ContentWriter] = set()
        self._writers_lock = threading.Lock()

    # -- blobs ----------------------------------------------------------------------------------

    def _info_claimed(self, digest: str) -> pb.Info:
        """Info of a blob that this node now holds (claimed once, before it can vanish)."""
        held = self._holdings.holds_cached(digest)  # committed or read here: most likely there
        info = self._store.info(digest, expect_present=held)
        # Held already: ``claim`` costs no request and marks the hold as relied on. Else it
        # writes the record, and the blob is looked at once more after it.
        if self._holdings.claim(digest):
            try:
                info = self._store.info(digest)  # re-check: a deletion may have just finished
            except NotFoundError:
                self._holdings.forget(digest)
                raise
        return info_to_pb(info)

    @_rpc
    def Info(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.InfoResponse:
        info = self._info_claimed(request.digest)
        self._readers.note(request.digest, info.size)  # containerd reads next: no HEAD then
        return pb.InfoResponse(info=info)

    @_rpc
    def Update(self, request: pb.UpdateRequest, context: grpc.ServicerContext) -> pb.UpdateResponse:
        paths = list(request.update_mask.paths) if request.HasField("update_mask") else []
        info = self._store.update(info_from_pb(request.info), *paths)
        return pb.UpdateResponse(info=info_to_pb(info))

    @_stream
    def List(
        self, request: pb.ListContentRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ListContentResponse]:
        held = self._holdings.held()
        batch: list[pb.Info] = []
        for info in self._store.walk(*request.filters):
            if info.digest not in held:
                continue
            batch.append(info_to_pb(info))
            if len(batch) >= LIST_BATCH:
                yield pb.ListContentResponse(info=batch)
                batch = []
        if batch:
            yield pb.ListContentResponse(info=batch)

    @_rpc
    def Delete(self, request: pb.DeleteContentRequest, context: grpc.ServicerContext) -> Empty:
        self._readers.unnote(request.digest)
        self._holdings.release(request.digest)
        return Empty()

    @_stream
    def Read(
        self, request: pb.ReadContentRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ReadContentResponse]:
        # One reader per digest across RPCs: containerd reads a layer in 32 KiB RPCs, so this
        # path runs thousands of times per layer and does no more than it must.
        offset = max(request.offset, 0)
        digest = request.digest
        readers = self._readers
        entry = readers.take(digest, fresh=offset == 0, offset=offset)
        try:
            reader = entry.reader
            size = reader.size
            if offset > size:
                raise OutOfRangeError(f"read past object length {size} bytes")
            end = size
            if request.size > 0:
                end = min(end, offset + request.size)
            while offset < end:
                data = reader.read_at(offset, min(READ_CHUNK, end - offset))
                if not data:
                    break
                yield pb.ReadContentResponse(offset=offset, data=data)
                offset += len(data)
                if offset < end and not context.is_active():
                    break  # the client went away: read no more
        finally:
            readers.give(digest, entry)

    def read_now(self, request: pb.ReadContentRequest) -> pb.ReadContentResponse | None:
        """``Read``'s whole answer, when a cached reader already holds it: one message that
        continues a sequential pass inside a fetched read-ahead window. Never waits and never
        asks the store, so an event loop may call it; ``None``: run ``Read`` instead. A read
        from offset 0 always goes to ``Read`` (it re-checks that the blob exists)."""
        offset = request.offset
        if offset <= 0:
            return None
        digest = request.digest
        readers = self._readers
        entry = readers.take_cached(digest)
        if entry is None:
            return None
        try:
            reader = entry.reader
            end = reader.size if request.size <= 0 else min(reader.size, offset + request.size)
            if not offset < end <= offset + READ_CHUNK:
                return None
            data = reader.read_ready(offset, end - offset)
            if data is None:
                return None
        finally:
            readers.give(digest, entry)
        return pb.ReadContentResponse(offset=offset, data=data)

    # -- ingestions -----------------------------------------------------------------------------

    @_rpc
    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:
        status = self._store.status(self._holdings.scope_ref(request.ref))
        return pb.StatusResponse(status=status_to_pb(status, request.ref))

    @_rpc
    def ListStatuses(
        self, request: pb.ListStatusesRequest, context: grpc.ServicerContext
    ) -> pb.ListStatusesResponse:
        # Filters apply to containerd's refs, not to the node-scoped refs in the store.
        matcher = parse_filters(*request.filters)
        found = []
        for status in self._store.list_statuses():
            ref = self._holdings.unscope_ref(status.ref)
            if ref is None:
                continue
            own = replace(status, ref=ref)
            if matcher.match(status_adaptor(own)):
                found.append(status_to_pb(own))
        return pb.ListStatusesResponse(statuses=found)

    @_rpc
    def Abort(self, request: pb.AbortRequest, context: grpc.ServicerContext) -> Empty:
        self._store.abort(self._holdings.scope_ref(request.ref))
        return Empty()

    @_stream
    def Write(
        self, request_iterator: Iterable[pb.WriteContentRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.WriteContentResponse]:
        requests = iter(request_iterator)
        first = next(requests, None)
        if first is None:
            return
        if not first.ref:
            raise InvalidArgumentError("first message must have a reference")
        writer = self._open_writer(first)
        extra = {"ref": first.ref, "total": first.total, "hint": writer.hint}
        _log.info("ingestion opened", extra=extra)
        with self._writers_lock:
            self._writers.add(writer)
        try:
            session = _WriteSession(self._store, writer, first, self._holdings, self._write_pool)
            try:
                yield from session.run(first, requests)
            finally:
                writer.mark_closing()  # a reopen of the ref may wait for this close
                session.settle_quietly()
        finally:
            with self._writers_lock:
                self._writers.discard(writer)
            # Closing (never aborting) keeps an interrupted ingestion resumable.
            writer.close()

    def _open_writer(self, first: pb.WriteContentRequest) -> ContentWriter:
        ref = self._holdings.scope_ref(first.ref)
        desc = Descriptor(digest=first.expected, size=max(first.total, 0))
        hint = "" if first.expected else digest_hint(first.ref)
        try:
            return self._store.writer(ref, desc, hint=hint, wait=REOPEN_WAIT)
        except AlreadyExistsError:
            # The client will take the blob as present: hold it before saying so.
            self._info_claimed(first.expected)
            raise

    def close_writers(self) -> None:
        """Close every open writer (at shutdown), leaving their ingestions resumable."""
        with self._writers_lock:
            writers = list(self._writers)
            self._writers.clear()
        for writer in writers:
            try:
                writer.close()
            except Exception:
                _log.exception("closing a writer at shutdown failed")


class _WriteSession:
    """One Write stream: STAT / WRITE / COMMIT requests, one response each.

    WRITE data is applied behind the reply: the reply (new offset, no digest) goes out as soon
    as the request is checked, and the bytes are hashed and stored on ``pool`` while the client
    sends its next request. Every request first waits for that write, so a failure ends the
    stream at the next request with the write's own status, and STAT and COMMIT always answer
    with the digest of every byte accepted. containerd's clients keep the last non-empty digest
    they were sent and take a WRITE reply's offset only; its metadata layer sends STAT right
    before COMMIT, so the digest it records is always the settled one.
    """

    def __init__(
        self,
        store: ContentStore,
        writer: ContentWriter,
        first: pb.WriteContentRequest,
        holdings: Holdings,
        pool: Executor | None,
    ) -> None:
        self._store = store
        self._writer = writer
        self._ref = holdings.scope_ref(first.ref)
        self._total = max(first.total, 0)
        self._expected = first.expected
        self._holdings = holdings
        self._pool = pool
        self._pending: Future[int] | None = None

    def _settle(self) -> None:
        """Wait for the write in flight; its error becomes the current request's."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def settle_quietly(self) -> None:
        """At the end of the stream: finish the write in flight, logging a failure."""
        try:
            self._settle()
        except Exception:
            _log.warning("a write behind the stream failed", exc_info=True)

    def run(
        self, first: pb.WriteContentRequest, rest: Iterator[pb.WriteContentRequest]
    ) -> Iterator[pb.WriteContentResponse]:
        request: pb.WriteContentRequest | None = first
        while request is not None:
            yield self._handle(request)
            if request.action == pb.COMMIT:
                return
            request = next(rest, None)

    def _handle(self, req: pb.WriteContentRequest) -> pb.WriteContentResponse:
        writer = self._writer
        self._settle()
        status = writer.status()
        resp = pb.WriteContentResponse(action=req.action, offset=status.offset)
        if req.expected:
            self._expected = req.expected
        if req.total > 0:
            self._total = req.total
        if req.action == pb.STAT:
            resp.digest = writer.digest()
            resp.started_at.CopyFrom(timestamp(status.started_at))
            resp.updated_at.CopyFrom(timestamp(status.updated_at))
            resp.total = self._total
            return resp
        if req.action not in (pb.WRITE, pb.COMMIT):
            raise InvalidArgumentError(f"unknown write action {req.action}")
        if req.offset > 0 and req.offset != status.offset:
            raise OutOfRangeError(
                f"write at offset {req.offset} must occur at current offset {status.offset}"
            )
        if req.offset == 0 and status.offset > 0:
            writer.truncate(0)
            resp.offset = 0
        data = req.data  # read once: every read of a bytes field copies it
        if data and req.action == pb.WRITE and self._pool is not None:
            # Answered now, so counted now: Status and STAT describe every answered write
            # (offset and time of the answer), even while the bytes are still being applied.
            writer.accept(len(data))
            self._pending = self._pool.submit(writer.write, data)
            resp.offset += len(data)
            return resp  # the digest follows at the next STAT or COMMIT
        if data:
            resp.offset += writer.write(data)
        if req.action == pb.COMMIT:
            self._commit(req)
        resp.digest = writer.digest()
        if req.action == pb.COMMIT:
            resp.started_at.CopyFrom(timestamp(status.started_at))
            resp.updated_at.CopyFrom(timestamp(status.updated_at))
            resp.total = self._total or resp.offset
        return resp

    def _commit(self, req: pb.WriteContentRequest) -> None:
        digest = self._writer.digest()
        # This node's claim (its holder record, then the deletion-marker check) goes out
        # beside the writer's lease renewal; the writer waits for it before it publishes or
        # looks the blob up (``ready``), so a blob this commit finds or makes is held here.
        claim = Beside(self._store.executor, functools.partial(self._holdings.claim, digest))

        def ready() -> None:
            claim.result()

        # No HEAD of the blob here: the writer's commit answers AlreadyExists itself (its
        # create-only publish, or its own check before a session at a staging key) and then
        # removes the ingestion, as an abort would. A commit that publishes leaves the removal
        # of the ingestion's state and lease to the stream's close, after this answer: the
        # client (inside containerd's metadata lock) waits for the blob, not for that.
        labels = dict(req.labels) if req.labels else None
        try:
            self._writer.commit(
                self._total, self._expected, labels, ready=ready, defer_removal=True
            )
            _log.info("blob committed", extra={"digest": digest})
        except AlreadyExistsError:
            ready()  # the claim's own error, if it failed; else this node now holds the blob
            raise
        except Exception:
            if claim.settle():  # a fresh record of a commit that failed: take it back
                self._holdings.forget(digest)
            raise
