"""Azure Blob: a 256 MiB blob through cargohold and through azure-storage-blob, on one Azurite.

    python benchmarks/bench_azure.py [--size-mib 256] [--part-mib 8] [--concurrency 4]
                                     [--connection-string CS]

Starts one Azurite on loopback (unless a connection string is given, or
``CARGOHOLD_TEST_AZURE_CONNECTION_STRING`` is set) and measures, each step in a child process
of its own so that its peak RSS is its own:

* ``sdk-upload``: ``BlobClient.upload_blob(stream, max_concurrency=C)`` staging part-size blocks
* ``sdk-download``: ``BlobClient.download_blob(max_concurrency=C).readall()``
* ``cargohold-ingest``: ``Writer.write`` in part-size pieces, then ``commit`` with the digest
* ``cargohold-read``: ``ReaderAt.read_at(0, size)``

Both sides read the payload from the same temporary file. Prints a table, the cargohold/SDK
ratios, and the whole result as one JSON line.
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
MiB = 1 << 20
STEPS = ("sdk-upload", "sdk-download", "cargohold-ingest", "cargohold-read")


def _rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(4 * MiB):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def _sdk_step(step: str, cs: str, container: str, path: Path, part: int, conc: int) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(
        cs, max_block_size=part, max_single_put_size=part, max_chunk_get_size=part
    )
    blob = service.get_blob_client(container, "sdk/blob")
    size = path.stat().st_size
    if step == "sdk-upload":
        with path.open("rb") as source:
            blob.upload_blob(source, length=size, overwrite=True, max_concurrency=conc)
    else:
        assert len(blob.download_blob(max_concurrency=conc).readall()) == size
    service.close()


def _cargohold_step(
    step: str, container: str, path: Path, digest: str, part: int, conc: int
) -> None:
    import cargohold

    size = path.stat().st_size
    store = cargohold.open_store(f"az://{container}/cargohold", part_size=part, concurrency=conc)
    try:
        if step == "cargohold-ingest":
            desc = cargohold.Descriptor(digest=digest, size=size)
            with path.open("rb") as source, store.writer("bench", desc) as writer:
                while piece := source.read(part):
                    writer.write(piece)
                writer.commit(size, digest)
        else:
            with store.reader_at(digest) as reader:
                assert len(reader.read_at(0, size)) == size
    finally:
        store.close()


def _child(args: argparse.Namespace) -> None:
    path, part = Path(args.file), args.part_mib * MiB
    cs = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    digest = _sha256_of(path)  # the descriptor a client already has; cargohold re-hashes
    before = _rss_mib()
    started = time.perf_counter()
    if args.step.startswith("sdk"):
        _sdk_step(args.step, cs, args.container, path, part, args.concurrency)
    else:
        _cargohold_step(args.step, args.container, path, digest, part, args.concurrency)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_mib": _rss_mib(), "start_rss_mib": before}))


@contextlib.contextmanager
def _azurite(connection_string: str | None) -> Iterator[str]:
    if connection_string:
        yield connection_string
        return
    sys.path.insert(0, str(REPO))
    from tests.emulators._process import free_port, http_ready, running
    from tests.emulators.azurite import AZURITE_BLOB, DEV_ACCOUNT, dev_connection_string

    if not AZURITE_BLOB.exists():
        sys.exit("Azurite is missing: run .ci/install/azurite.sh")
    port = free_port()
    argv = [str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--disableTelemetry",
            "--silent", "--blobKeepAliveTimeout", "300"]  # fmt: skip
    probe = http_ready(f"http://127.0.0.1:{port}/{DEV_ACCOUNT}?comp=list")
    with running(argv, probe, name=f"azurite-bench-{port}", log_dir=REPO / "test-logs"):
        yield dev_connection_string(port)


def _write_payload(path: Path, size: int) -> None:
    block = hashlib.shake_256(b"azure-bench").digest(MiB)
    with path.open("wb") as out:
        for start in range(0, size, MiB):
            out.write(block[: min(MiB, size - start)])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--connection-string", default=os.environ.get("CARGOHOLD_TEST_AZURE_CONNECTION_STRING")
    )
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--container", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        _child(args)
        return

    size = args.size_mib * MiB
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, _azurite(args.connection_string) as cs:
        from azure.storage.blob import BlobServiceClient

        path = Path(tmp) / "payload"
        _write_payload(path, size)
        container = f"bench-{uuid.uuid4().hex[:12]}"
        with BlobServiceClient.from_connection_string(cs) as service:
            service.create_container(container)
        # The connection string goes to the steps through the environment, never argv.
        env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": cs}
        for step in STEPS:
            argv = [sys.executable, __file__, "--step", step, "--container", container,
                    "--file", str(path), "--part-mib", str(args.part_mib),
                    "--concurrency", str(args.concurrency)]  # fmt: skip
            out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
            results[step] = json.loads(out.stdout.strip().splitlines()[-1])
            results[step]["mib_per_s"] = size / MiB / results[step]["seconds"]

    upload = results["cargohold-ingest"]["mib_per_s"] / results["sdk-upload"]["mib_per_s"]
    download = results["cargohold-read"]["mib_per_s"] / results["sdk-download"]["mib_per_s"]
    print(f"{args.size_mib} MiB blob, {args.part_mib} MiB parts/blocks, "
          f"concurrency {args.concurrency}, Azurite")  # fmt: skip
    print(f"{'step':<18}{'MiB/s':>9}{'seconds':>10}{'peak RSS MiB':>14}")
    for step, r in results.items():
        print(f"{step:<18}{r['mib_per_s']:>9.1f}{r['seconds']:>10.2f}{r['peak_rss_mib']:>14.0f}")
    print(f"cargohold/SDK ratio: write {upload:.2f}, read {download:.2f}")
    print(json.dumps({"size_mib": args.size_mib, "part_mib": args.part_mib,
                      "concurrency": args.concurrency, "steps": results,
                      "write_ratio": upload, "read_ratio": download}))  # fmt: skip


if __name__ == "__main__":
    main()
