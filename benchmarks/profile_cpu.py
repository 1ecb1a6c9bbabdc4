"""Where the client's CPU goes: cargohold ingest / read vs boto3 on one moto server, profiled.

    python benchmarks/profile_cpu.py [--size 256] [--part-size 8] [--concurrency 4] [--top 25]

Each side runs in a child process of its own with every thread profiled (cProfile per thread on
that thread's CPU clock, merged), after one unprofiled warm-up of the same transfer. Prints, per
side, the CPU seconds
per GiB of the timed transfer (user + system, unprofiled run), then the profiled run's top
functions by own time and the share of a few buckets (hashing, checksums, signing, socket I/O,
copies) so the two sides can be compared line by line.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BLOCK,
    S3_CREDENTIALS,
    MiB,
    NullSink,
    RepeatingReader,
    child_step,
    moto_server,
    payload_digest,
    payload_pieces,
    stopwatch,
)

BUCKETS = {  # bucket: substrings of "file:function" (own time) that belong to it
    "hashlib update (SHA-256 of the blob)": ["_hashlib.HASH", "digests.py"],
    "crc32 / md5 (botocore checksums)": ["crc32", "md5"],
    "socket send / recv": ["sendall", "recv_into", "'send'", "'recv'"],
    "bytes copies, reads of buffers": ["'join'", "BytesIO", "tobytes", "memoryview"],
    "botocore / urllib3 request handling": ["botocore", "urllib3", "http/client"],
    "s3transfer / cargohold bookkeeping": ["s3transfer", "cargohold"],
}


def _profiled(run: Callable[[], None], setup: Callable[[], None]) -> pstats.Stats:
    """Run ``setup`` then ``run`` with every thread started meanwhile profiled (only ``run``
    itself in the main thread); the merged stats."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original = threading.Thread.run

    def traced(self: threading.Thread) -> None:
        prof = cProfile.Profile(time.thread_time)  # CPU of this thread, not wall time
        with lock:
            profiles.append(prof)
        prof.runcall(original, self)

    threading.Thread.run = traced  # type: ignore[method-assign]
    main = cProfile.Profile(time.thread_time)
    try:
        setup()
        main.runcall(run)
    finally:
        threading.Thread.run = original  # type: ignore[method-assign]
    stats = pstats.Stats(main)
    for prof in profiles:
        stats.add(prof)
    return stats


def _transfer(step: dict[str, Any]) -> tuple[Callable[[], None], Callable[[], None]]:
    """The transfer to measure, and the setup that opens a fresh store (whose worker threads
    then start during the transfer, so the profile sees them)."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    import cargohold

    which, size, bucket, endpoint = step["which"], step["size"], step["bucket"], step["endpoint"]
    part, conc = step["part_size"] * MiB, step["concurrency"]
    digest = step["digest"]
    url = f"s3://{bucket}/store?endpoint_url={endpoint}&addressing_style=path"
    client = boto3.client("s3", endpoint_url=endpoint)
    config = TransferConfig(
        multipart_threshold=part, multipart_chunksize=part, max_concurrency=conc
    )
    counter = iter(range(1000))
    stores = [cargohold.open_store(url, part_size=part, concurrency=conc)]

    def fresh_store() -> None:
        stores.append(cargohold.open_store(url, part_size=part, concurrency=conc))

    def cargohold_ingest(keep: bool = False) -> None:
        store = stores[-1]
        desc = cargohold.Descriptor(digest=digest, size=size)
        with store.writer(f"p-{next(counter)}", desc) as writer:
            for piece in payload_pieces(size):
                writer.write(piece)
            writer.commit(size, digest)
        if not keep:
            store.delete(digest)

    def cargohold_read() -> None:
        store = stores[-1]
        with store.reader_at(digest) as reader:
            got = 0
            while got < reader.size:
                got += len(reader.read_at(got, 32 * 1024))

    def boto3_ingest() -> None:
        source = RepeatingReader(BLOCK, size)
        client.upload_fileobj(source, bucket, "boto3/blob", Config=config)  # type: ignore[arg-type]

    def boto3_read() -> None:
        client.download_fileobj(bucket, "boto3/blob", NullSink(), Config=config)  # type: ignore[arg-type]

    if which == "cargohold-read":  # a blob to read
        cargohold_ingest(keep=True)
    if which == "boto3-read":
        boto3_ingest()
    runs = {
        "cargohold-ingest": cargohold_ingest,
        "cargohold-read": cargohold_read,
        "boto3-ingest": boto3_ingest,
        "boto3-read": boto3_read,
    }
    return runs[which], fresh_store if which.startswith("cargohold") else (lambda: None)


def child(step: dict[str, Any]) -> None:
    """Warm up, time one unprofiled transfer, then profile one; print the report."""
    run, setup = _transfer(step)
    run()  # warm-up: imports, connections
    with stopwatch() as took:
        run()
    gib = step["size"] / (1024 * MiB)
    print(f"== {step['which']}: {took[0]:.2f} s wall, {took[1] / gib:.2f} CPU s/GiB")
    stats = _profiled(run, setup)
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(step["top"])
    print(out.getvalue().split("\n", 6)[-1])
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    for bucket, needles in BUCKETS.items():
        own = sum(
            v[2]
            for (path, _line, func), v in stats.stats.items()  # type: ignore[attr-defined]
            if any(
                n.strip("'") in (func if n.startswith("'") else f"{path}:{func}") for n in needles
            )
        )
        print(f"   {bucket:40} {own / gib:6.2f} s/GiB  ({own / total:5.1%} of profiled CPU)")
    print(f"   {'all (thread CPU, profiled)':40} {total / gib:6.2f} s/GiB", flush=True)


def main() -> None:
    if (step := child_step()) is not None:
        child(step)
        return
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--size", type=int, default=256, help="MiB")
    p.add_argument("--part-size", type=int, default=8, help="MiB")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--only", default="cargohold-ingest,boto3-ingest,cargohold-read,boto3-read")
    args = p.parse_args()
    import boto3

    os.environ.update(S3_CREDENTIALS)
    with moto_server() as endpoint:
        bucket = f"prof-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        size = args.size * MiB
        common = {"size": size, "bucket": bucket, "endpoint": endpoint, "top": args.top,
                  "digest": payload_digest(size), "part_size": args.part_size,
                  "concurrency": args.concurrency}  # fmt: skip
        for which in args.only.split(","):
            run_step_verbose({**common, "which": which})


def run_step_verbose(step: dict[str, Any]) -> None:
    """Run one profiling child and show its whole output."""
    import json
    import subprocess

    argv = [sys.executable, __file__, "--child", json.dumps(step)]
    subprocess.run(argv, check=True, env={**os.environ, **S3_CREDENTIALS}, timeout=1800)


if __name__ == "__main__":
    main()
