"""Azure Blob: a 256 MiB blob through cargohold and through azure-storage-blob, on one Azurite.

    python benchmarks/bench_azure.py [--size-mib 256] [--part-mib 8] [--concurrency 4]
                                     [--connection-string CS] [--repeat N]

Starts its own Azurite on 127.0.0.1 (unless a connection string is given, or
``CARGOHOLD_TEST_AZURE_CONNECTION_STRING`` is set) and stops it by PID. Each step runs in a
child process of its own so that its peak RSS is its own:

* ``sdk-upload``: ``BlobClient.upload_blob(stream, max_concurrency=C)`` staging part-size blocks
* ``sdk-download``: ``BlobClient.download_blob(max_concurrency=C).readall()``
* ``cargohold-ingest``: ``Writer.write`` in part-size pieces, then ``commit`` with the digest
* ``cargohold-read``: ``ReaderAt.read_at(0, size)``

Both sides read the payload from the same temporary file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
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

BASE = "azure-storage-blob"
STEPS = ("sdk-upload", "sdk-download", "cargohold-ingest", "cargohold-read")


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


def child(step: dict[str, Any]) -> None:
    """One step, in this (child) process; the imports are not timed."""
    import azure.storage.blob  # noqa: F401 - imported before the stopwatch, like cargohold

    import cargohold  # noqa: F401

    path, part, conc = Path(step["file"]), step["part_mib"] * MiB, step["concurrency"]
    cs = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    with stopwatch() as took:
        if step["step"].startswith("sdk"):
            _sdk_step(step["step"], cs, step["container"], path, part, conc)
        else:
            url, ingest = f"az://{step['container']}/cargohold", step["step"] == "cargohold-ingest"
            cargohold_file_step(url, ingest, path, step["digest"], part, conc)
    emit(path.stat().st_size, took[0])


@contextlib.contextmanager
def _azurite(connection_string: str | None) -> Iterator[str]:
    if connection_string:
        yield connection_string
        return
    from tests.emulators._process import free_port, http_ready, running
    from tests.emulators.azurite import AZURITE_BLOB, DEV_ACCOUNT, dev_connection_string

    if not AZURITE_BLOB.exists():
        sys.exit("Azurite is missing: run .ci/install/azurite.sh")
    port = free_port()
    argv = [str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--disableTelemetry",
            "--silent", "--blobKeepAliveTimeout", "300"]  # fmt: skip
    probe = http_ready(f"http://127.0.0.1:{port}/{DEV_ACCOUNT}?comp=list")
    cwd = str(AZURITE_BLOB.parents[2])
    with running(argv, probe, name="azurite", log_dir=LOG_DIR, cwd=cwd):
        yield dev_connection_string(port)


def _blob_endpoint(cs: str) -> str:
    found = re.search(r"BlobEndpoint=(http://[^/;]+)", cs)
    if found is None:
        sys.exit("the connection string names no http BlobEndpoint")
    return found.group(1)


def measure(args: argparse.Namespace) -> list[Row]:
    """One run on a fresh Azurite: the four steps, in order, at each delay."""
    from azure.storage.blob import BlobServiceClient

    size = args.size_mib * MiB
    rows: list[Row] = []
    with payload_file(size) as (path, digest), _azurite(args.connection_string) as direct_cs:
        direct = _blob_endpoint(direct_cs)
        for delay in (float(d) for d in args.delays.split(",")):
            with latency(direct, delay) as proxy:
                cs = direct_cs.replace(direct, proxy.url)
                container = f"bench-{uuid.uuid4().hex[:12]}"
                with BlobServiceClient.from_connection_string(direct_cs) as service:
                    service.create_container(container)
                # The connection string goes to the steps through the environment, never argv.
                env = {"AZURE_STORAGE_CONNECTION_STRING": cs}
                common = {"container": container, "file": str(path), "digest": digest,
                          "part_mib": args.part_mib, "concurrency": args.concurrency}  # fmt: skip
                got = counted_steps(proxy, __file__, STEPS, common, env)
            case = f"{args.size_mib} MiB @ {delay:g} ms"
            rows.append(Row(case, "ingest", got["cargohold-ingest"], got["sdk-upload"]))
            rows.append(Row(case, "read", got["cargohold-read"], got["sdk-download"]))
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--size-mib", type=int, default=256)
    p.add_argument("--part-mib", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--delays", default="0,20", help="ms before each request (latency proxy)")
    p.add_argument(
        "--connection-string", default=os.environ.get("CARGOHOLD_TEST_AZURE_CONNECTION_STRING")
    )
    return p


if __name__ == "__main__":
    bench_main(parser(), measure, BASE, child)
