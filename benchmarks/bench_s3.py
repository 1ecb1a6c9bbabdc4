"""S3 on one moto server: cargohold ingest / read back vs boto3's transfer manager.

    python benchmarks/bench_s3.py [--sizes 256,1024] [--part-size 8] [--concurrency 4]
                                  [--endpoint http://127.0.0.1:PORT] [--repeat N]

Starts its own moto server on 127.0.0.1 (unless ``--endpoint`` names one) and stops it by PID.
Each transfer runs in its own child process (its peak RSS is reported). cargohold ingests with
the expected digest known (the multipart upload completes straight into the blob key) and reads
back with ``read_at`` windows of part size x concurrency; boto3 uses ``upload_fileobj`` and
``download_fileobj`` with the same part size and concurrency.
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
    MiB,
    NullSink,
    RepeatingReader,
    Row,
    bench_main,
    emit,
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
        else:
            window, got = part * conc, 0
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


@contextlib.contextmanager
def _endpoint(given: str) -> Iterator[str]:
    if given:
        yield given
    else:
        with moto_server() as url:
            yield url


def measure(args: argparse.Namespace) -> list[Row]:
    """One run on a fresh moto server: ingest and read each size both ways."""
    import boto3

    os.environ.update(S3_CREDENTIALS)
    rows: list[Row] = []
    with _endpoint(args.endpoint) as endpoint:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        for size in (int(s) * MiB for s in args.sizes.split(",")):
            common = {"size": size, "bucket": bucket, "endpoint": endpoint,
                      "digest": payload_digest(size), "part_size": args.part_size,
                      "concurrency": args.concurrency}  # fmt: skip
            got = {
                which: run_step(__file__, {"which": which, **common}, env=S3_CREDENTIALS)
                for which in ("cargohold-ingest", "boto3-ingest", "cargohold-read", "boto3-read")
            }
            rows.append(Row(mb(size), "ingest", got["cargohold-ingest"], got["boto3-ingest"]))
            rows.append(Row(mb(size), "read", got["cargohold-read"], got["boto3-read"]))
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--sizes", default="256,1024", help="blob sizes in MiB")
    p.add_argument("--part-size", type=int, default=8, help="MiB")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--endpoint", default="", help="a running S3 endpoint (default: own moto)")
    return p


if __name__ == "__main__":
    bench_main(parser(), measure, BASE, child)
