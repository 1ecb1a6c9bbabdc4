"""Read-only content servers on several Python gRPC stacks (rpcfloor experiment, not shipped).

    python rpcfloor_server.py SOCKET_PATH BLOB_FILE KIND

KIND: ``sync`` (grpcio thread-pool server; env STUB_WORKERS, STUB_GRPC_OPTIONS as JSON list),
``aio`` / ``aio-uvloop`` (grpc.aio), ``grpclib`` / ``grpclib-uvloop`` (grpclib on h2).
Every kind answers Content/Read from BLOB_FILE held in memory, 1 MiB per response message,
like benchmarks/stub_content_server.py's ``read`` mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.gen import content_pb2_grpc as pb_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The stub's answers (1 MiB messages) and server options: the same servers to compare.
from stub_content_server import OPTIONS, read_responses


class SyncRead(pb_grpc.ContentServicer):
    def __init__(self, blob: memoryview) -> None:
        self._blob = blob

    def Read(self, request: Any, context: Any) -> Iterator[Any]:
        yield from read_responses(self._blob, request)


class AioRead(pb_grpc.ContentServicer):
    def __init__(self, blob: memoryview) -> None:
        self._blob = blob

    async def Read(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for r in read_responses(self._blob, request):
            yield r


async def serve_aio(sock: str, blob: memoryview) -> None:
    server = grpc.aio.server(options=OPTIONS)
    pb_grpc.add_ContentServicer_to_server(AioRead(blob), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"unix://{sock}")
    await server.start()
    await server.wait_for_termination()


class GrpclibContent:
    """A hand-written grpclib servicer: only Read."""

    def __init__(self, blob: memoryview) -> None:
        self._blob = blob

    async def read(self, stream: Any) -> None:
        request = await stream.recv_message()
        for r in read_responses(self._blob, request):
            await stream.send_message(r)

    def __mapping__(self) -> dict[str, Any]:
        from grpclib.const import Cardinality, Handler

        return {
            "/containerd.services.content.v1.Content/Read": Handler(
                self.read, Cardinality.UNARY_STREAM, pb.ReadContentRequest, pb.ReadContentResponse
            )
        }


async def serve_grpclib(sock: str, blob: memoryview) -> None:
    from grpclib.server import Server

    server = Server([GrpclibContent(blob)])
    await server.start(path=sock)
    await server.wait_closed()


def main() -> None:
    sock, blob_file, kind = sys.argv[1], sys.argv[2], sys.argv[3]
    blob = memoryview(Path(blob_file).read_bytes())
    if kind.endswith("-uvloop"):
        import uvloop

        run = uvloop.run
    else:
        run = asyncio.run  # type: ignore[assignment]
    if kind.startswith("aio"):
        run(serve_aio(sock, blob))
    elif kind.startswith("h2mini"):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from rpcfloor_h2mini import serve_h2mini

        run(serve_h2mini(sock, blob))
    elif kind.startswith("grpclib"):
        run(serve_grpclib(sock, blob))
    elif kind == "sync":
        extra = [tuple(o) for o in json.loads(os.environ.get("STUB_GRPC_OPTIONS", "[]"))]
        workers = int(os.environ.get("STUB_WORKERS", "8"))
        opts = dict(OPTIONS)
        opts.update(dict(extra))  # type: ignore[arg-type]
        server = grpc.server(futures.ThreadPoolExecutor(workers), options=list(opts.items()))
        pb_grpc.add_ContentServicer_to_server(SyncRead(blob), server)  # type: ignore[no-untyped-call]
        server.add_insecure_port(f"unix://{sock}")
        server.start()
        server.wait_for_termination()
    else:
        raise SystemExit(f"unknown kind {kind}")


if __name__ == "__main__":
    main()
