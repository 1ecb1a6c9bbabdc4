"""containerd through cargohold vs containerd's builtin content store, in the same run.

Times ``ctr content ingest`` of a 256 MiB blob and ``ctr images import --no-unpack`` of a
multi-layer image on: the builtin store, cargohold on file://, and (with --s3) cargohold on
S3 served by a local moto server. Prints MiB/s and the ratio to the builtin store; the target
for file:// is >= 0.8.

    python benchmarks/bench_containerd.py [--size-mib 256] [--layers 4x32] [--s3]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.emulators._process import free_port, http_ready, running  # noqa: E402
from tests.emulators.containerd import (  # noqa: E402
    LOG_DIR,
    Host,
    containerd_process,
    serve_process,
)
from tests.plugin.oci import build_image  # noqa: E402

MiB = 1024 * 1024


@contextlib.contextmanager
def host(store_url: str | None, name: str) -> Iterator[Host]:
    with tempfile.TemporaryDirectory(prefix="chb-", dir="/tmp") as d:
        host_dir = Path(d)
        with contextlib.ExitStack() as stack:
            sock: Path | None = None
            if store_url is not None:
                sock = host_dir / "content.sock"
                stack.enter_context(serve_process(store_url, sock, "bench", name=f"{name}-serve"))
            yield stack.enter_context(containerd_process(host_dir, sock, name=name))


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    import os

    import boto3

    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    with running(argv, http_ready(endpoint), name="bench-moto", log_dir=LOG_DIR):
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        yield f"s3://bench/store?endpoint_url={endpoint}&region=us-east-1"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(
    store_url: str | None, name: str, blob: bytes, image_tar: Path, image_mib: float
) -> dict[str, float]:
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    with host(store_url, name) as h:
        ingest = timed(
            lambda: h.ctr(
                "content", "ingest", "--expected-digest", digest, "bench", input=blob, timeout=900
            )
        )
        imp = timed(
            lambda: h.ctr(
                "images", "import", "--no-unpack", "--all-platforms", str(image_tar), timeout=900
            )
        )
    return {"ingest": len(blob) / MiB / ingest, "import": image_mib / imp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--layers", default="4x32", help="COUNTxMiB of image layers")
    parser.add_argument("--s3", action="store_true", help="also run on S3 (moto server)")
    args = parser.parse_args()

    rng = random.Random(1)
    blob = b"".join(rng.randbytes(MiB) for _ in range(args.size_mib))
    count, size = (int(x) for x in args.layers.split("x"))
    image = build_image("bench/multi:1", [size * MiB] * count, seed=3)
    image_mib = sum(len(b) for b in image.blobs.values()) / MiB
    with tempfile.TemporaryDirectory(prefix="chb-") as work:
        tar = Path(work) / "image.tar"
        tar.write_bytes(image.tar)
        results = {"builtin": run(None, "bench-builtin", blob, tar, image_mib)}
        results["file://"] = run(f"file://{work}/store", "bench-file", blob, tar, image_mib)
        if args.s3:
            with moto_s3() as url:
                results["s3 (moto)"] = run(url, "bench-s3", blob, tar, image_mib)

    base = results["builtin"]
    print(
        f"ingest {args.size_mib} MiB blob; import {count} layers x {size} MiB ({image_mib:.0f} MiB)"
    )
    print(f"{'store':<12} {'ingest MiB/s':>13} {'ratio':>6} {'import MiB/s':>13} {'ratio':>6}")
    for label, r in results.items():
        print(
            f"{label:<12} {r['ingest']:>13.1f} {r['ingest'] / base['ingest']:>6.2f}"
            f" {r['import']:>13.1f} {r['import'] / base['import']:>6.2f}"
        )


if __name__ == "__main__":
    main()
