"""Ingest and read one blob through cargohold and through google-cloud-storage, side by side.

    python benchmarks/bench_gcs.py [--size-mib 256] [--chunk-mib 8] [--endpoint URL]

Starts one fake-gcs-server on loopback (unless ``--endpoint`` names a running one) and runs
four phases against it, each in a fresh child process so that its peak RSS is its own:

* ``sdk-write``: ``Blob.upload_from_file`` with ``chunk_size`` = the part size (resumable upload)
* ``sdk-read``: ``Blob.download_as_bytes``
* ``cargohold-write``: ``Writer.write`` in part-size pieces, ``commit`` with the digest
* ``cargohold-read``: ``ReaderAt.read_at(0, size)``

The payload is a temporary file both sides stream from. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
PHASES = ("sdk-write", "sdk-read", "cargohold-write", "cargohold-read")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _run_phase(phase: str, url: str, bucket: str, path: Path, chunk: int) -> dict[str, float]:
    """One phase, in this (child) process; returns seconds and peak RSS."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    import cargohold

    size = path.stat().st_size
    digest = "sha256:" + _file_sha256(path)
    baseline = _peak_rss_mib()
    started = time.perf_counter()
    if phase.startswith("sdk"):
        client = storage.Client(project="bench", credentials=AnonymousCredentials())
        blob = client.bucket(bucket).blob("sdk/blob", chunk_size=chunk)
        if phase == "sdk-write":
            with path.open("rb") as source:
                blob.upload_from_file(source, size=size)
        else:
            data = blob.download_as_bytes()
            assert len(data) == size
    else:
        store = cargohold.open_store(f"gs://{bucket}/cargohold", part_size=chunk)
        try:
            if phase == "cargohold-write":
                with (
                    path.open("rb") as source,
                    store.writer("bench", cargohold.Descriptor(digest=digest, size=size)) as writer,
                ):
                    while piece := source.read(chunk):
                        writer.write(piece)
                    writer.commit(size, digest)
            else:
                with store.reader_at(digest) as reader:
                    data = reader.read_at(0, size)
                assert len(data) == size
        finally:
            store.close()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mib": _peak_rss_mib(), "baseline_rss_mib": baseline}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _emulator(endpoint: str | None) -> Iterator[str]:
    if endpoint:
        yield endpoint.rstrip("/")
        return
    sys.path.insert(0, str(REPO))
    from tests.emulators._process import free_port, http_ready, running
    from tests.emulators.fakegcs import fake_gcs_argv

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        fake_gcs_argv(port),
        http_ready(f"{url}/storage/v1/b"),
        name="fake-gcs-server-bench",
        log_dir=REPO / "test-logs",
    ):
        yield url


def _payload(path: Path, size: int) -> None:
    block = hashlib.shake_256(b"bench").digest(MiB)
    with path.open("wb") as out:
        for start in range(0, size, MiB):
            out.write(block[: min(MiB, size - start)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--chunk-mib", type=int, default=8)
    parser.add_argument("--endpoint", default=os.environ.get("CARGOHOLD_TEST_GCS_ENDPOINT"))
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    chunk = args.chunk_mib * MiB
    if args.phase:  # child process
        result = _run_phase(args.phase, args.endpoint, args.bucket, Path(args.file), chunk)
        print(json.dumps(result))
        return

    size = args.size_mib * MiB
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, _emulator(args.endpoint) as endpoint:
        path = Path(tmp) / "payload"
        _payload(path, size)
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        sys.path.insert(0, str(REPO))
        from tests.emulators.fakegcs import create_bucket

        create_bucket(endpoint, bucket)
        env = {**os.environ, "STORAGE_EMULATOR_HOST": endpoint}
        for phase in PHASES:
            argv = [sys.executable, __file__, "--phase", phase, "--bucket", bucket,
                    "--file", str(path), "--chunk-mib", str(args.chunk_mib),
                    "--endpoint", endpoint]  # fmt: skip
            out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
            results[phase] = json.loads(out.stdout.strip().splitlines()[-1])
            results[phase]["mb_per_s"] = size / MiB / results[phase]["seconds"]

    print(f"{args.size_mib} MiB blob, {args.chunk_mib} MiB chunks/parts, fake-gcs-server")
    print(f"{'phase':<16}{'MiB/s':>10}{'seconds':>10}{'peak RSS MiB':>14}")
    for phase, r in results.items():
        print(f"{phase:<16}{r['mb_per_s']:>10.1f}{r['seconds']:>10.2f}{r['peak_rss_mib']:>14.0f}")
    write_ratio = results["cargohold-write"]["mb_per_s"] / results["sdk-write"]["mb_per_s"]
    read_ratio = results["cargohold-read"]["mb_per_s"] / results["sdk-read"]["mb_per_s"]
    print(f"ratio cargohold/SDK: write {write_ratio:.2f}, read {read_ratio:.2f}")
    summary = {"size_mib": args.size_mib, "chunk_mib": args.chunk_mib, "phases": results,
               "write_ratio": write_ratio, "read_ratio": read_ratio}  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
