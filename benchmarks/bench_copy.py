"""``cargohold copy`` of an image, file:// to S3 (moto server), vs boto3's transfer manager.

    python benchmarks/bench_copy.py [--layers 4] [--layer-mib 64] [--part-size 8]
                                    [--concurrency 4] [--blobs 4] [--delays 0,20]
                                    [--endpoint http://127.0.0.1:PORT] [--import]
                                    [--repeat N]

The source is a file:// store holding one image: ``--layers`` layers of ``--layer-mib`` MiB
(incompressible), a config and an OCI manifest, named ``bench:1``. For every delay in
``--delays`` (ms, a latency proxy in front of the server; 0 still counts requests), on a fresh
bucket, each in a child process:

* ``copy``: ``images.copy.copy(src, dst, ["bench:1"])`` into an empty S3 store, ``--blobs``
  blobs at a time, each writer with ``--part-size`` MiB parts and ``--concurrency`` parts in
  flight; against boto3's ``TransferManager`` uploading the same blob files (the source store's
  own files) to the same server with the same part size and as many requests in flight
  (``--blobs`` x ``--concurrency``).
* ``rerun``: the same copy again, with nothing left to copy; against boto3 asking the server
  about each blob with a HEAD (what a copy that does not list would do). The requests column
  is what the destination was sent: cargohold's is its listing page(s) and one read of
  ``index.json``.
* with ``--import``, ``import``: the same image exported to an OCI archive (a tar) beforehand,
  then ``images.importer.import_images`` of that archive into an empty S3 store, ``--blobs``
  blobs at a time; against the same boto3 upload.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BLOCK,
    REPO,
    S3_CREDENTIALS,
    Measured,
    MiB,
    Row,
    bench_main,
    counted,
    emit,
    latency,
    mb,
    moto_server,
    run_step,
    stopwatch,
)

BASE = "boto3"
NAME = "bench:1"


def _layer_pieces(index: int, size: int) -> Iterator[bytes]:
    """Layer ``index``: BLOCK rotated by ``index + 1`` bytes, repeated (distinct digests)."""
    block = BLOCK[index + 1 :] + BLOCK[: index + 1]
    left = size
    while left > 0:
        piece = block[: min(len(block), left)]
        left -= len(piece)
        yield piece


def build_source(root: Path, layers: int, layer_size: int) -> list[str]:
    """The source store (file://) with the image named ``NAME``; returns its blob digests."""
    import hashlib
    import json

    import cargohold
    from cargohold.images import graph

    store = cargohold.open_store(f"file://{root}")
    try:
        descs = []
        for i in range(layers):
            hasher = hashlib.sha256()
            with store.writer(f"bench-layer-{i}") as writer:
                for piece in _layer_pieces(i, layer_size):
                    hasher.update(piece)
                    writer.write(piece)
                digest = "sha256:" + hasher.hexdigest()
                writer.commit(layer_size, digest)
            descs.append({"mediaType": graph.OCI_LAYER, "digest": digest, "size": layer_size})
        config = json.dumps(
            {"rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}
        )
        config_desc = _put(store, config.encode(), graph.OCI_CONFIG)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": graph.OCI_MANIFEST,
                "config": {"mediaType": graph.OCI_CONFIG, **config_desc},
                "layers": descs,
            }
        ).encode()
        target = _put(
            store, manifest, graph.OCI_MANIFEST, graph.gc_labels(graph.OCI_MANIFEST, manifest)
        )
        store.names.set(
            NAME, cargohold.Descriptor(graph.OCI_MANIFEST, target["digest"], target["size"])
        )
        return [digest for digest, _size in store.list_blobs()]
    finally:
        store.close()


def _put(
    store: Any, data: bytes, media_type: str, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    import hashlib
    import io

    from cargohold.helpers import write_blob

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    write_blob(store, f"bench-{digest}", io.BytesIO(data), expected=digest, labels=labels)
    return {"digest": digest, "size": len(data)}


def child(step: dict[str, Any]) -> None:
    """One step: ``cargohold-copy`` (also the rerun), ``boto3-upload``, ``boto3-heads``."""
    which, bucket, endpoint = step["which"], step["bucket"], step["endpoint"]
    part, conc, blobs = step["part_size"] * MiB, step["concurrency"], step["blobs"]
    source = Path(step["source"])
    if which == "cargohold-import":
        import cargohold
        from cargohold.images.importer import import_images

        prefix = f"import-{uuid.uuid4().hex[:8]}"
        url = f"s3://{bucket}/{prefix}?endpoint_url={endpoint}&addressing_style=path"
        dst = cargohold.open_store(url, part_size=part, concurrency=conc)
        with stopwatch() as took:
            result = import_images(dst, step["archive"], concurrency=blobs)
        dst.close()
        emit(step["total"], took[0], copied=result.bytes_imported)
        return
    if which == "cargohold-copy":
        import cargohold
        from cargohold.images.copy import copy

        src = cargohold.open_store(f"file://{source}")
        url = f"s3://{bucket}/store?endpoint_url={endpoint}&addressing_style=path"
        dst = cargohold.open_store(url, part_size=part, concurrency=conc)
        with stopwatch() as took:
            summary = copy(src, dst, [NAME], concurrency=blobs)
        src.close()
        dst.close()
        emit(step["total"], took[0], copied=summary.bytes_copied)
        return
    import boto3
    from boto3.s3.transfer import TransferConfig
    from s3transfer.manager import TransferManager

    client = boto3.client("s3", endpoint_url=endpoint)
    files = [source / "blobs" / "sha256" / d.partition(":")[2] for d in step["digests"]]
    if which == "boto3-upload":
        config = TransferConfig(
            multipart_threshold=part, multipart_chunksize=part, max_concurrency=conc * blobs
        )
        with stopwatch() as took, TransferManager(client, config) as manager:
            futures = [manager.upload(str(f), bucket, f"boto3/{f.name}") for f in files]
            for future in futures:
                future.result()
        emit(step["total"], took[0])
    else:  # boto3-heads: what is there, asked one blob at a time
        with stopwatch() as took:
            for f in files:
                client.head_object(Bucket=bucket, Key=f"boto3/{f.name}")
        emit(step["total"], took[0])


@contextlib.contextmanager
def _endpoint(given: str) -> Iterator[tuple[str, bool]]:
    if given:
        yield given, False
    else:
        with moto_server() as url:
            yield url, True


def measure(args: argparse.Namespace) -> list[Row]:
    """One run on a fresh moto server: the copy and the rerun at each delay."""
    import boto3

    os.environ.update(S3_CREDENTIALS)
    rows: list[Row] = []
    layer_size = args.layer_mib * MiB
    (REPO / "test-logs").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO / "test-logs") as tmp:
        source = Path(tmp) / "source"
        digests = build_source(source, args.layers, layer_size)
        archive = Path(tmp) / "image.tar"
        if args.import_archive:
            import cargohold
            from cargohold.images.exporter import export

            with cargohold.open_store(f"file://{source}") as src:
                export(src, [NAME], archive)
        total = sum(
            (source / "blobs" / "sha256" / d.partition(":")[2]).stat().st_size for d in digests
        )
        with _endpoint(args.endpoint) as (direct, owned):
            for delay in (float(d) for d in args.delays.split(",")):
                with latency(direct, delay) as proxy:
                    bucket = f"bench-{uuid.uuid4().hex[:12]}"
                    boto3.client("s3", endpoint_url=proxy.url).create_bucket(Bucket=bucket)
                    common = {
                        "bucket": bucket, "endpoint": proxy.url, "source": str(source),
                        "digests": digests, "total": total, "part_size": args.part_size,
                        "concurrency": args.concurrency, "blobs": args.blobs,
                        "archive": str(archive),
                    }  # fmt: skip
                    ours = counted(proxy, partial(_step, "cargohold-copy", common))
                    sdk = counted(proxy, partial(_step, "boto3-upload", common))
                    rerun = counted(proxy, partial(_step, "cargohold-copy", common))
                    heads = counted(proxy, partial(_step, "boto3-heads", common))
                    if args.import_archive:
                        imported = counted(proxy, partial(_step, "cargohold-import", common))
                case = f"{args.layers} x {mb(layer_size)} @ {delay:g} ms"
                rows.append(Row(case, "copy", ours, sdk))
                rows.append(Row(case, "rerun, nothing to copy (vs a HEAD per blob)", rerun, heads))
                if args.import_archive:
                    rows.append(Row(case, "import of the image's OCI archive", imported, sdk))
                if owned:
                    _reset_moto(direct)
    return rows


def _reset_moto(url: str) -> None:
    """Drop every bucket of our own server (moto keeps objects in memory)."""
    request = urllib.request.Request(url + "/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=60):
        pass


def _step(which: str, common: dict[str, Any]) -> Measured:
    return run_step(__file__, {"which": which, **common}, S3_CREDENTIALS)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--layer-mib", type=int, default=64)
    p.add_argument("--part-size", type=int, default=8, help="MiB")
    p.add_argument("--concurrency", type=int, default=4, help="parts in flight per blob")
    p.add_argument("--blobs", type=int, default=4, help="blobs copied at once")
    p.add_argument("--delays", default="0,20", help="ms before each request, per pass")
    p.add_argument("--endpoint", default="", help="a running S3 endpoint (default: own moto)")
    p.add_argument(
        "--import",
        dest="import_archive",
        action="store_true",
        help="also import the image's OCI archive (vs the same boto3 upload)",
    )
    return p


if __name__ == "__main__":
    bench_main(parser(), measure, BASE, child)
