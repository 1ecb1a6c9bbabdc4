"""Ingest and read one blob through cargohold and through google-cloud-storage, side by side.

    python benchmarks/bench_gcs.py [--size-mib 256] [--chunk-mib 8] [--endpoint URL] [--repeat N]

Starts its own fake-gcs-server on 127.0.0.1 (unless ``--endpoint`` names a running one) and
stops it by PID. Four phases run against it, each in a fresh child process so that its peak RSS
is its own:

* ``sdk-write``: ``Blob.upload_from_file`` with ``chunk_size`` = the part size (resumable upload)
* ``sdk-read``: ``Blob.download_as_bytes``
* ``cargohold-write``: ``Writer.write`` in part-size pieces, ``commit`` with the digest
* ``cargohold-read``: ``ReaderAt.read_at(0, size)``

The payload is a temporary file both sides stream from.
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
    LOG_DIR,
    MiB,
    Row,
    bench_main,
    cargohold_file_step,
    counted_steps,
    emit,
    latency,
    payload_file,
    stopwatch,
)

BASE = "google-cloud-storage"
PHASES = ("sdk-write", "sdk-read", "cargohold-write", "cargohold-read")


def child(step: dict[str, Any]) -> None:
    """One phase, in this (child) process; the imports are not timed."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    import cargohold  # noqa: F401 - imported here so that the timed step does not import it

    phase, bucket, chunk, digest = (
        step["phase"],
        step["bucket"],
        step["chunk_mib"] * MiB,
        step["digest"],
    )
    path = Path(step["file"])
    size = path.stat().st_size
    with stopwatch() as took:
        if phase.startswith("sdk"):
            client = storage.Client(project="bench", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
            blob = client.bucket(bucket).blob("sdk/blob", chunk_size=chunk)
            if phase == "sdk-write":
                with path.open("rb") as source:
                    blob.upload_from_file(source, size=size)
            else:
                assert len(blob.download_as_bytes()) == size
        else:
            url, ingest = f"gs://{bucket}/cargohold", phase == "cargohold-write"
            cargohold_file_step(url, ingest, path, digest, chunk)
    emit(size, took[0])


@contextlib.contextmanager
def _emulator(endpoint: str | None) -> Iterator[str]:
    if endpoint:
        yield endpoint.rstrip("/")
        return
    from tests.emulators._process import free_port, http_ready, running
    from tests.emulators.fakegcs import fake_gcs_argv

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(fake_gcs_argv(port), http_ready(f"{url}/storage/v1/b"),
                 name="fake-gcs-server", log_dir=LOG_DIR):  # fmt: skip
        yield url


def measure(args: argparse.Namespace) -> list[Row]:
    """One run on a fresh fake-gcs-server: the four phases, in order, at each delay."""
    from tests.emulators.fakegcs import create_bucket

    size = args.size_mib * MiB
    rows: list[Row] = []
    with payload_file(size) as (path, digest), _emulator(args.endpoint) as direct:
        for delay in (float(d) for d in args.delays.split(",")):
            with latency(direct, delay) as proxy:
                bucket = f"bench-{uuid.uuid4().hex[:12]}"
                create_bucket(direct, bucket)
                env = {"STORAGE_EMULATOR_HOST": proxy.url}
                common = {"bucket": bucket, "file": str(path), "digest": digest,
                          "chunk_mib": args.chunk_mib}  # fmt: skip
                got = counted_steps(proxy, __file__, PHASES, common, env, key="phase")
            case = f"{args.size_mib} MiB @ {delay:g} ms"
            rows.append(Row(case, "ingest", got["cargohold-write"], got["sdk-write"]))
            rows.append(Row(case, "read", got["cargohold-read"], got["sdk-read"]))
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--size-mib", type=int, default=256)
    p.add_argument("--chunk-mib", type=int, default=8)
    p.add_argument("--delays", default="0,20", help="ms before each request (latency proxy)")
    p.add_argument("--endpoint", default=os.environ.get("CARGOHOLD_TEST_GCS_ENDPOINT"))
    return p


if __name__ == "__main__":
    bench_main(parser(), measure, BASE, child)
