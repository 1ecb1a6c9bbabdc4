"""S3 on one moto server: cargohold ingest / read back vs boto3's transfer manager.

    python benchmarks/bench_s3.py [--sizes 256,1024] [--part-size 8] [--concurrency 4]
                                  [--delays 0,20] [--pieces 1024,32]
                                  [--endpoint http://127.0.0.1:PORT] [--repeat N]

Starts its own moto server on 127.0.0.1 (unless ``--endpoint`` names one) and stops it by PID.
Every delay in ``--delays`` (ms) puts a latency proxy in front of it (tests/emulators/_latency.py:
that long before each request; 0 still counts requests), with a fresh bucket each.
Each transfer runs in its own child process (its peak RSS and the CPU seconds of its timed part
are reported). cargohold ingests with the expected digest known (the multipart upload completes
straight into the blob key) and reads back with ``read_at`` windows of part size x concurrency,
then sequentially in each of ``--pieces`` (KiB, as containerd's 32 KiB buffered reader does),
and through the plugin's Read RPCs of ``--rpc`` KiB each, as containerd's proxy issues them;
boto3 uses ``upload_fileobj`` and ``download_fileobj`` with the same part size and concurrency,
and its download is the baseline of every read.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BLOCK,
    S3_CREDENTIALS,
    Measured,
    MiB,
    NullSink,
    RepeatingReader,
    Row,
    bench_main,
    counted,
    emit,
    latency,
    mb,
    moto_server,
    payload_digest,
    payload_pieces,
    run_step,
    stopwatch,
)

BASE = "boto3"


def child(step: dict[str, Any]) -> None:
    """One transfer: ``cargohold-ingest``, ``cargohold-read``, ``boto3-ingest``, ``boto3-read``."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    which, size, bucket, endpoint = step["which"], step["size"], step["bucket"], step["endpoint"]
    part, conc = step["part_size"] * MiB, step["concurrency"]
    if which.startswith("cargohold"):
        import cargohold

        url = f"s3://{bucket}/store?endpoint_url={endpoint}&addressing_style=path"
        store = cargohold.open_store(url, part_size=part, concurrency=conc)
        digest = step["digest"]
        if which == "cargohold-ingest":
            desc = cargohold.Descriptor(digest=digest, size=size)
            with stopwatch() as took, store.writer(f"bench-{size}", desc) as writer:
                for piece in payload_pieces(size):
                    writer.write(piece)
                writer.commit(size, digest)
            emit(size, took[0])
        elif which == "cargohold-rpc":
            _rpc_read(store, digest, step["piece"])
        else:
            window, got = step.get("piece") or part * conc, 0
            with stopwatch() as took, store.reader_at(digest) as reader:
                while got < reader.size:
                    got += len(reader.read_at(got, window))
            emit(got, took[0])
        store.close()
        return
    client = boto3.client("s3", endpoint_url=endpoint)
    config = TransferConfig(
        multipart_threshold=part, multipart_chunksize=part, max_concurrency=conc
    )
    key = f"boto3/{size}"
    if which == "boto3-ingest":
        with stopwatch() as took:
            client.upload_fileobj(RepeatingReader(BLOCK, size), bucket, key, Config=config)  # type: ignore[arg-type]
        emit(size, took[0])
    else:
        sink = NullSink()
        with stopwatch() as took:
            client.download_fileobj(bucket, key, sink, Config=config)  # type: ignore[arg-type]
        emit(sink.count, took[0])


def _rpc_read(store: Any, digest: str, piece: int) -> None:
    """Read the blob as containerd unpacks it through the plugin: Info, then one Read RPC per
    ``piece`` bytes in a row, against an in-process ``ContentServer`` (its CPU counts too)."""
    import grpc

    from cargohold.plugin.gen import content_pb2 as pb
    from cargohold.plugin.gen import content_pb2_grpc as pb_grpc
    from cargohold.plugin.server import ContentServer, parse_address

    server = ContentServer(store, "bench", parse_address("tcp://127.0.0.1:0"))
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = pb_grpc.ContentStub(channel)  # type: ignore[no-untyped-call]
    got = 0
    with stopwatch() as took:
        size = stub.Info(pb.InfoRequest(digest=digest)).info.size
        while got < size:
            request = pb.ReadContentRequest(digest=digest, offset=got, size=piece)
            for resp in stub.Read(request):
                got += len(resp.data)
    channel.close()
    server.stop(grace=1)
    emit(got, took[0])


@contextlib.contextmanager
def _endpoint(given: str) -> Iterator[str]:
    if given:
        yield given
    else:
        with moto_server() as url:
            yield url


def measure(args: argparse.Namespace) -> list[Row]:
    """One run on a fresh moto server: ingest and read each size both ways, at each delay."""
    import boto3

    os.environ.update(S3_CREDENTIALS)
    rows: list[Row] = []
    pieces = [int(p) * 1024 for p in args.pieces.split(",") if p]
    with _endpoint(args.endpoint) as direct:
        for delay in (float(d) for d in args.delays.split(",")):
            with latency(direct, delay) as proxy:
                rows += _measure_at(args, proxy, f"{delay:g} ms", pieces, boto3)
    return rows


def _measure_at(
    args: argparse.Namespace, proxy: Any, at: str, pieces: list[int], boto3: Any
) -> list[Row]:
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=proxy.url).create_bucket(Bucket=bucket)
    rows: list[Row] = []
    for size in (int(s) * MiB for s in args.sizes.split(",")):
        common = {"size": size, "bucket": bucket, "endpoint": proxy.url,
                  "digest": payload_digest(size), "part_size": args.part_size,
                  "concurrency": args.concurrency}  # fmt: skip
        got = {
            which: _step(proxy, which, common)
            for which in ("cargohold-ingest", "boto3-ingest", "cargohold-read", "boto3-read")
        }
        case = f"{mb(size)} @ {at}"
        rows.append(Row(case, "ingest", got["cargohold-ingest"], got["boto3-ingest"]))
        rows.append(Row(case, "read", got["cargohold-read"], got["boto3-read"]))
        for piece in pieces:
            ours = _step(proxy, "cargohold-read", common, piece=piece)
            rows.append(Row(case, f"read {piece // 1024} KiB pieces", ours, got["boto3-read"]))
        if args.rpc:
            ours = _step(proxy, "cargohold-rpc", common, piece=args.rpc * 1024)
            rows.append(Row(case, f"plugin Read RPCs of {args.rpc} KiB", ours, got["boto3-read"]))
    return rows


def _step(proxy: Any, which: str, common: dict[str, Any], **extra: object) -> Measured:
    """One child step, its requests counted by ``proxy``."""
    step = {"which": which, **common, **extra}
    return counted(proxy, lambda: run_step(__file__, step, S3_CREDENTIALS))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--sizes", default="256,1024", help="blob sizes in MiB")
    p.add_argument("--part-size", type=int, default=8, help="MiB")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--delays", default="0,20", help="ms before each request, per pass")
    p.add_argument("--pieces", default="1024,32", help="sequential read sizes in KiB")
    p.add_argument("--rpc", type=int, default=32, help="KiB per plugin Read RPC (0: skip)")
    p.add_argument("--endpoint", default="", help="a running S3 endpoint (default: own moto)")
    return p


if __name__ == "__main__":
    bench_main(parser(), measure, BASE, child)
