"""Requests and wall time per store operation on S3 (moto), at each delay of the latency proxy.

    python benchmarks/bench_ops.py [--delays 0,20] [--blobs 200] [--labelled 40]

One moto server of its own; per delay a fresh bucket behind ``tests/emulators/_latency.py``.
Each operation runs once in this process and the proxy counts the HTTP requests it sends (by
method) and its wall time: with 20 ms before every request, a sequence of N dependent requests
costs at least N x 20 ms, so the table shows where round trips add up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import S3_CREDENTIALS, MiB, latency, moto_server, payload_digest, payload_pieces


def _ops(store: Any, blobs: int, labelled: int) -> list[tuple[str, Callable[[], object]]]:
    import hashlib

    import cargohold

    small = b"x" * 1024
    small_digest = "sha256:" + hashlib.sha256(small).hexdigest()
    big = 16 * MiB
    big_digest = payload_digest(big)

    def commit_small() -> None:
        with store.writer("ops-small") as writer:
            writer.write(small)
            writer.commit(len(small), small_digest)

    def commit_big() -> None:
        desc = cargohold.Descriptor(digest=big_digest, size=big)
        with store.writer("ops-big", desc) as writer:
            for piece in payload_pieces(big):
                writer.write(piece)
            writer.commit(big, big_digest)

    def fill() -> None:
        for n in range(blobs):
            data = f"blob {n}".encode()
            labels = {"n": str(n)} if n < labelled else None
            with store.writer(f"ops-fill-{n}") as writer:
                writer.write(data)
                writer.commit(len(data), "sha256:" + hashlib.sha256(data).hexdigest(), labels)

    def read_small() -> None:
        with store.reader_at(small_digest) as reader:
            reader.read_at(0, 1024)

    def update() -> None:
        info = store.info(small_digest)
        labels = {"a": "b"}
        store.update(cargohold.Info(info.digest, info.size, info.created_at, info.updated_at,
                                    labels), "labels")  # fmt: skip

    return [
        ("writer + commit, 1 KiB (digest unknown)", commit_small),
        ("writer + commit, 16 MiB (digest known)", commit_big),
        ("info (no labels)", lambda: store.info(big_digest)),
        ("update labels", update),
        ("info (labelled)", lambda: store.info(small_digest)),
        ("reader_at + read_at 1 KiB", read_small),
        (f"commit {blobs} small blobs ({labelled} labelled), in a row", fill),
        (f"walk {blobs + 2} blobs ({labelled + 1} labelled)", lambda: list(store.walk())),
        ("delete", lambda: store.delete(big_digest)),
    ]


def measure(args: argparse.Namespace) -> dict[str, dict[float, tuple[int, float, str]]]:
    """Per operation and delay: requests, wall seconds, requests by method."""
    import boto3

    import cargohold

    os.environ.update(S3_CREDENTIALS)
    found: dict[str, dict[float, tuple[int, float, str]]] = {}
    with moto_server() as endpoint:
        for delay in (float(d) for d in args.delays.split(",")):
            with latency(endpoint, delay) as proxy:
                bucket = f"ops-{uuid.uuid4().hex[:12]}"
                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
                url = f"s3://{bucket}/store?endpoint_url={proxy.url}&addressing_style=path"
                store = cargohold.open_store(url)
                try:
                    for name, op in _ops(store, args.blobs, args.labelled):
                        proxy.reset()
                        started = time.perf_counter()
                        op()
                        took = time.perf_counter() - started
                        counts = proxy.reset()
                        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                        found.setdefault(name, {})[delay] = (sum(counts.values()), took, detail)
                finally:
                    store.close()
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--delays", default="0,20", help="ms before each request")
    p.add_argument("--blobs", type=int, default=200)
    p.add_argument("--labelled", type=int, default=40)
    args = p.parse_args()
    found = measure(args)
    delays = [float(d) for d in args.delays.split(",")]
    head = " | ".join(f"@ {d:g} ms: requests, s" for d in delays)
    print(f"| operation | {head} | requests by method (last delay) |")
    print("|---|" + "---:|" * len(delays) + "---|")
    for name, by_delay in found.items():
        cells = " | ".join(f"{by_delay[d][0]}, {by_delay[d][1]:.2f}" for d in delays)
        print(f"| {name} | {cells} | {by_delay[delays[-1]][2]} |")


if __name__ == "__main__":
    main()
