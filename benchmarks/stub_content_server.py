"""A stand-in content service, to measure how fast any Python gRPC plugin can be.

Not cargohold: it serves only Write and Read (and answers every other RPC UNIMPLEMENTED), keeps
nothing after a Write stream, and trusts the client's digest at commit. Three modes:

* ``null``: checks offsets and answers; stores and hashes nothing (the transport's floor).
* ``hash-write``: also hashes every byte (SHA-256) and writes it to one file with ``pwrite``,
  on a worker behind the reply as ``cargohold serve`` does, then fsyncs at commit (the floor
  for any store that must hash and keep the bytes).
* ``read``: answers Read for any digest from one blob of ``READ_BLOB`` bytes held in memory,
  1 MiB per response message as ``cargohold serve`` does (grpcio's own cost per Read RPC).

    python benchmarks/stub_content_server.py SOCKET_PATH MODE
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.gen import content_pb2_grpc as pb_grpc

MODES = ("null", "hash-write", "read", "read-aio")
READ_BLOB = 32 * 1024 * 1024
READ_CHUNK = 1024 * 1024


def read_responses(data: bytes, request: pb.ReadContentRequest) -> Iterator[pb.ReadContentResponse]:
    """The messages a Read of ``data`` answers with, READ_CHUNK bytes each."""
    blob = memoryview(data)
    offset = max(request.offset, 0)
    end = len(blob) if request.size <= 0 else min(len(blob), offset + request.size)
    while offset < end:
        n = min(READ_CHUNK, end - offset)
        yield pb.ReadContentResponse(offset=offset, data=bytes(blob[offset : offset + n]))
        offset += n


class StubContent(pb_grpc.ContentServicer):
    def __init__(self, mode: str, data_path: Path) -> None:
        self._mode = mode
        self._data_path = data_path
        self._pool = futures.ThreadPoolExecutor(4)
        self._blob = os.urandom(READ_BLOB) if mode == "read" else b""

    def Read(
        self, request: pb.ReadContentRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ReadContentResponse]:
        yield from read_responses(self._blob, request)

    def Write(
        self, request_iterator: Iterable[pb.WriteContentRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.WriteContentResponse]:
        keep = self._mode == "hash-write"
        hasher = hashlib.sha256()
        fd = os.open(self._data_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        offset, pending = 0, None

        def store(data: bytes, at: int) -> None:
            hasher.update(data)
            os.pwrite(fd, data, at)

        try:
            for req in request_iterator:
                if pending is not None:
                    pending.result()
                    pending = None
                reply = pb.WriteContentResponse(action=req.action, offset=offset)
                if req.action == pb.STAT:
                    reply.digest = "sha256:" + hasher.copy().hexdigest()
                    yield reply
                    continue
                data = req.data
                if data and keep:
                    pending = self._pool.submit(store, data, offset)
                offset += len(data)
                reply.offset = offset
                if req.action == pb.COMMIT:
                    if pending is not None:
                        pending.result()
                    os.fsync(fd)
                    reply.digest = req.expected
                    yield reply
                    return
                yield reply
        finally:
            os.close(fd)


OPTIONS = [
    ("grpc.max_receive_message_length", 16 << 20),
    ("grpc.max_send_message_length", 16 << 20),
    ("grpc.http2.lookahead_bytes", 8 << 20),
    ("grpc.optimization_target", "throughput"),
]


class AioReadStub(pb_grpc.ContentServicer):
    """``read-aio``: the ``read`` mode on grpc.aio (one event loop, no thread pool)."""

    def __init__(self) -> None:
        self._blob = os.urandom(READ_BLOB)

    async def Read(
        self, request: pb.ReadContentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.ReadContentResponse]:
        for response in read_responses(self._blob, request):
            yield response


async def serve_aio(socket_path: str) -> None:
    server = grpc.aio.server(options=OPTIONS)
    pb_grpc.add_ContentServicer_to_server(AioReadStub(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"unix://{socket_path}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    socket_path, mode = sys.argv[1], sys.argv[2]
    if mode not in MODES:
        raise SystemExit(f"mode must be one of {MODES}")
    if mode == "read-aio":
        asyncio.run(serve_aio(socket_path))
        return
    options = OPTIONS + [tuple(o) for o in json.loads(os.environ.get("STUB_GRPC_OPTIONS", "[]"))]
    workers = int(os.environ.get("STUB_WORKERS", "8"))
    server = grpc.server(futures.ThreadPoolExecutor(workers), options=options)
    servicer = StubContent(mode, Path(socket_path + ".data"))
    pb_grpc.add_ContentServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"unix://{socket_path}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
