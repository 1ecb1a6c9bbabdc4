"""Pulls through the plugin: ``ctr images pull`` with unpacking, from a local registry.

    python benchmarks/bench_pull.py [--layers 4x32] [--delays 0,20] [--engines h2,grpcio]
                                    [--floor] [--repeat N]

Pushes an image of random layers to Debian's ``docker-registry`` on 127.0.0.1 (``skopeo
copy``), then times ``ctr images pull --plain-http --snapshotter native`` on fresh containerds:

* builtin content store (the baseline for file://);
* cargohold on file://;
* cargohold on S3 (moto server), once per ``--delays`` value behind the latency proxy. Its
  baseline is what a user does without cargohold: pull into the builtin store, then upload the
  same blobs to the same S3 (through the same proxy) with boto3's ``upload_file`` (8 MiB parts,
  4 threads), the two times added.

With ``--floor`` it also pulls through ``benchmarks/gofloor``: containerd's own content service
(Go) on a local directory, as the proxy plugin. No object store, no Python: it is the floor under
any proxy content plugin on this machine, compared with the builtin store and with each S3
baseline.

The pull includes the unpack, which reads every layer back through the content store. CPU
s/GiB is that of the ``cargohold serve`` process (the S3 client) and, for the baseline, of the
boto3 upload alone. Every process started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    S3_CREDENTIALS,
    Measured,
    MiB,
    Row,
    bench_main,
    counted,
    cpu_of,
    emit,
    go_program,
    peak_rss_of,
    run_step,
    stopwatch,
)
from _registry import push, registry
from bench_containerd import host, moto_store
from tests.plugin.oci import build_image

BASE = "builtin"
REF = "bench/pull:1"


def child(step: dict[str, Any]) -> None:
    """Upload every file of ``step["dir"]`` to S3 with boto3, one after the other."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    client = boto3.client("s3", endpoint_url=step["endpoint"])
    config = TransferConfig(
        multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4
    )
    files = sorted(Path(step["dir"]).iterdir())
    with stopwatch() as took:
        for path in files:
            client.upload_file(str(path), "bench", f"boto3/{path.name}", Config=config)
    emit(sum(p.stat().st_size for p in files), took[0])


def pull(
    store_url: str | None,
    name: str,
    ref: str,
    nbytes: int,
    proxy: Any = None,
    engine: str = "h2",
) -> Measured:
    """One ``ctr images pull`` with unpacking on a fresh containerd (builtin when no URL),
    through ``cargohold serve --engine ENGINE``."""
    serve_args = ("--engine", engine)
    with host(store_url, name, serve_args) as (h, serve_pid):
        if proxy is not None:
            proxy.reset()
        cpu = cpu_of(serve_pid) if serve_pid else 0.0
        with stopwatch() as took:
            h.ctr("images", "pull", "--plain-http", "--snapshotter", "native", ref, timeout=1800)
        report = {"cpu": cpu_of(serve_pid) - cpu} if serve_pid else {}
        rss = peak_rss_of(serve_pid) if serve_pid else 0
        requests = proxy.total if proxy is not None else None
    return replace(Measured(nbytes, took[0], rss, report), requests=requests)


@contextlib.contextmanager
def _image(layers: str) -> Iterator[tuple[Path, Path, int]]:
    """The image as an OCI archive, its blobs as files, and their total size."""
    count, size = (int(x) for x in layers.split("x"))
    image = build_image(REF, [size * MiB] * count, seed=5)
    with tempfile.TemporaryDirectory(prefix="chb-pull-") as work:
        archive = Path(work) / "image.tar"
        archive.write_bytes(image.tar)
        blobs = Path(work) / "blobs"
        blobs.mkdir()
        for digest, data in image.blobs.items():
            (blobs / digest.replace(":", "-")).write_bytes(data)
        yield archive, blobs, sum(len(b) for b in image.blobs.values())


def measure(args: argparse.Namespace) -> list[Row]:
    """One run: builtin, file:// and S3 at each delay, each on a containerd of its own."""
    os.environ.update(S3_CREDENTIALS)
    rows: list[Row] = []
    with _image(args.layers) as (archive, blobs, nbytes), registry() as reg:
        ref = f"{reg}/{REF}"
        push(archive, ref)
        builtin = pull(None, "pull-builtin", ref, nbytes)
        floor = None
        if args.floor:
            floor = pull(f"gofloor:{go_program('gofloor')}", "pull-gofloor", ref, nbytes)
            case = "gofloor (containerd's content service, local disk)"
            rows.append(Row(case, f"pull + unpack {args.layers} MiB", floor, builtin))
        for engine in args.engines.split(","):
            tag = f", --engine {engine}"
            with tempfile.TemporaryDirectory(prefix="chb-pull-store-") as store_dir:
                local = pull(f"file://{store_dir}/store", "pull-file", ref, nbytes, None, engine)
            rows.append(Row(f"file://{tag}", f"pull + unpack {args.layers} MiB", local, builtin))
            for delay in (float(d) for d in args.delays.split(",")):
                with moto_store(delay) as (url, proxy):
                    ours = pull(url, f"pull-s3-{delay:g}", ref, nbytes, proxy, engine)
                    step = {"dir": str(blobs), "endpoint": proxy.url}
                    upload = counted(proxy, partial(run_step, __file__, step, S3_CREDENTIALS))
                base = Measured(  # CPU: the boto3 upload's only (containerd's is not measured)
                    nbytes, builtin.seconds + upload.seconds, upload.peak_rss, upload.report,
                    upload.requests,
                )  # fmt: skip
                case = f"s3 (moto) @ {delay:g} ms{tag}"
                rows.append(Row(case, "pull + unpack vs builtin pull + boto3", ours, base))
                if floor is not None and engine == args.engines.split(",")[0]:
                    case = f"gofloor vs s3 @ {delay:g} ms baseline"
                    rows.append(Row(case, "pull + unpack vs builtin pull + boto3", floor, base))
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--layers", default="4x32", help="COUNTxMiB of image layers")
    p.add_argument("--delays", default="0,20", help="ms before each S3 request, per S3 case")
    p.add_argument(
        "--engines", default="h2", help="serve engines to run, comma-separated (h2,grpcio)"
    )
    p.add_argument(
        "--floor",
        action="store_true",
        help="also pull through containerd's own content service (benchmarks/gofloor)",
    )
    return p


if __name__ == "__main__":
    bench_main(parser(), measure, BASE, child)
