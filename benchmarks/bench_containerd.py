"""containerd through cargohold vs containerd's builtin content store, in the same run.

Times ``ctr content ingest`` of a 256 MiB blob and ``ctr images import --no-unpack`` of a
multi-layer image on: the builtin store, cargohold on file://, and (with --s3) cargohold on
S3 served by a moto server of its own on 127.0.0.1. Prints MiB/s, the ratio to the builtin store
(the target for file:// is >= 0.8) and the peak RSS of the ``cargohold serve`` process.
Every containerd, serve process and moto server is started here and stopped by PID.

With --unpack it also times the same import again, its blobs already present, once without and
once with unpacking (``--snapshotter native``): the difference is the unpack, where containerd
reads every layer through the content store (32 KiB Read RPCs through the plugin). ctr 1.6 has
no command that only unpacks (``ctr images mount`` ignores its --snapshotter flag).
With --delays 0,20 the S3 case runs once per delay behind the latency proxy
(tests/emulators/_latency.py), which also counts the requests of each operation.

With --floors it also ingests through ``stub_content_server.py``, a stand-in plugin that does
nothing (``null``) or only hashes and writes the bytes (``hash-write``): the ceilings that the
Python gRPC transport, and hashing plus writing on top of it, set on this machine.

With --write-modes every cargohold case runs twice, ``cargohold serve --write-behind`` (the
default: a WRITE is answered before its bytes are applied) and ``--no-write-behind``, in the
same run, so both get a ratio against the same builtin figures.

    python benchmarks/bench_containerd.py [--size-mib 256] [--layers 4x32] [--s3] [--floors]
                                          [--unpack] [--delays 0,20] [--write-modes]
                                          [--repeat N]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import random
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    Measured,
    MiB,
    Row,
    bench_main,
    cpu_of,
    latency,
    mb,
    moto_server,
    peak_rss_of,
    stopwatch,
)
from tests.emulators._process import running
from tests.emulators.containerd import LOG_DIR, Host, containerd_process, serve_process
from tests.plugin.oci import build_image

BASE = "builtin"
STUB = Path(__file__).resolve().parent / "stub_content_server.py"
WRITE_MODES = ("--write-behind", "--no-write-behind")


@contextlib.contextmanager
def host(
    store_url: str | None, name: str, serve_args: tuple[str, ...] = ()
) -> Iterator[tuple[Host, int]]:
    """A containerd on ``store_url`` through ``cargohold serve`` (builtin store when None),
    with ``serve_args`` added to its command line.

    A ``store_url`` of ``stub:MODE`` runs ``stub_content_server.py`` in that mode instead, and
    ``gofloor:BINARY`` runs that build of ``benchmarks/gofloor`` (containerd's own content
    service on a local directory).
    Yields the host and the serve process's PID (0 for the builtin store).
    """
    with (
        tempfile.TemporaryDirectory(prefix="chb-", dir="/tmp") as d,
        contextlib.ExitStack() as stack,
    ):
        host_dir, sock, serve_pid = Path(d), None, 0
        if store_url is not None:
            sock = host_dir / "content.sock"
            if store_url.startswith("stub:"):
                argv = [sys.executable, str(STUB), str(sock), store_url[5:]]
                serve = running(argv, sock.exists, name=f"{name}-stub", log_dir=LOG_DIR)
            elif store_url.startswith("gofloor:"):
                argv = [store_url[8:], str(sock), str(host_dir / "floor")]
                serve = running(argv, sock.exists, name=f"{name}-gofloor", log_dir=LOG_DIR)
            elif serve_args:  # serve_process's command line plus these
                argv = [sys.executable, "-m", "cargohold.plugin", "--address", f"unix://{sock}",
                        "--store", store_url, "--node-id", "bench", *serve_args]  # fmt: skip
                serve = running(argv, sock.exists, name=f"{name}-serve", log_dir=LOG_DIR)
            else:
                serve = serve_process(store_url, sock, "bench", name=f"{name}-serve")
            serve_pid = stack.enter_context(serve).pid
        yield stack.enter_context(containerd_process(host_dir, sock, name=name)), serve_pid


@contextlib.contextmanager
def moto_store(delay_ms: float | None = None) -> Iterator[tuple[str, Any]]:
    """A store URL on a fresh moto server, behind a latency proxy when ``delay_ms`` is given;
    and that proxy (``None`` without one)."""
    import boto3

    with moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        if delay_ms is None:
            yield f"s3://bench/store?endpoint_url={endpoint}&region=us-east-1", None
            return
        with latency(endpoint, delay_ms) as proxy:
            yield f"s3://bench/store?endpoint_url={proxy.url}&region=us-east-1", proxy


def run(
    store_url: str | None,
    name: str,
    blob: bytes,
    image_tar: Path | None,
    image_bytes: int,
    unpack: bool = False,
    proxy: Any = None,
    serve_args: tuple[str, ...] = (),
) -> dict[str, Measured]:
    """Ingest then import (unless ``image_tar`` is None), then unpack (with ``unpack``) on one
    fresh containerd; the serve process's peak RSS with each, requests when behind ``proxy``."""
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    got: dict[str, Measured] = {}
    with host(store_url, name, serve_args) as (h, serve_pid):

        def timed(op: str, nbytes: int, *argv: str, data: bytes | None = None) -> None:
            if proxy is not None:
                proxy.reset()
            cpu = cpu_of(serve_pid) if serve_pid else 0.0
            with stopwatch() as took:
                h.ctr(*argv, input=data, timeout=900)
            report = {"cpu": cpu_of(serve_pid) - cpu} if serve_pid else {}  # the serve process
            rss = peak_rss_of(serve_pid) if serve_pid else 0
            requests = proxy.total if proxy is not None else None
            got[op] = replace(Measured(nbytes, took[0], rss, report), requests=requests)

        timed("ingest", len(blob), "content", "ingest", "--expected-digest", digest, "bench",
              data=blob)  # fmt: skip
        if image_tar is None:
            return got
        timed("import", image_bytes, "images", "import", "--no-unpack", "--all-platforms",
              str(image_tar))  # fmt: skip
        if unpack:  # the same import twice: without, then with the unpack
            timed("reimport", image_bytes, "images", "import", "--no-unpack", "--all-platforms",
                  str(image_tar))  # fmt: skip
            timed("unpack", image_bytes, "images", "import", "--snapshotter", "native",
                  str(image_tar))  # fmt: skip
    return got


def measure(args: argparse.Namespace) -> list[Row]:
    """One run: builtin, file:// and (with --s3) S3, each on a containerd of its own.

    Whatever runs first finds the machine's memory in another state than whatever runs next
    (page cache, freed pages), which moved the import figures by ~10 % here; so runs alternate
    the order: odd runs start with the builtin store, even runs end with it.
    """
    args.run_number = getattr(args, "run_number", 0) + 1
    rng = random.Random(1)
    blob = b"".join(rng.randbytes(MiB) for _ in range(args.size_mib))
    count, size = (int(x) for x in args.layers.split("x"))
    image = build_image("bench/multi:1", [size * MiB] * count, seed=3)
    image_bytes = sum(len(b) for b in image.blobs.values())
    with tempfile.TemporaryDirectory(prefix="chb-") as work, contextlib.ExitStack() as stack:
        tar = Path(work) / "image.tar"
        tar.write_bytes(image.tar)
        cases: list[tuple[str, str | None, Path | None]] = [
            (BASE, None, tar),
            ("file://", f"file://{work}/store", tar),
        ]
        proxies: dict[str, Any] = {}
        if args.s3:
            delays = [float(d) for d in args.delays.split(",")] if args.delays else [None]
            for delay in delays:
                label = "s3 (moto)" if delay is None else f"s3 (moto) @ {delay:g} ms"
                url, proxies[label] = stack.enter_context(moto_store(delay))
                cases.append((label, url, tar))
        serve_args: dict[str, tuple[str, ...]] = {}
        if args.write_modes:  # every cargohold case once per mode, each on a store of its own
            plugin = cases[1:]
            cases = cases[:1]
            for label, store_url, image_tar in plugin:
                path, sep, query = (store_url or "").partition("?")
                for mode in WRITE_MODES:
                    own = f"{path}-{mode[2:]}{sep}{query}"
                    cases.append((f"{label} {mode[2:]}", own, image_tar))
                    serve_args[cases[-1][0]] = (mode,)
                    proxies[cases[-1][0]] = proxies.get(label)
        if args.floors:  # stand-ins that serve Write only: ingest, no import
            cases += [(f"stub {mode}", f"stub:{mode}", None) for mode in ("null", "hash-write")]
        order = cases[::-1] if args.run_number % 2 == 0 else cases
        print(f"run {args.run_number} order: {', '.join(c[0] for c in order)}", flush=True)
        done = {
            label: run(
                url,
                f"bench-{n}",
                blob,
                image_tar,
                image_bytes if image_tar else 0,
                args.unpack,
                proxies.get(label),
                serve_args.get(label, ()),
            )
            for n, (label, url, image_tar) in enumerate(order)
        }
    results = {label: done[label] for label, _, _ in cases}  # rows in one order for every run
    base = results.pop(BASE)
    ops = {"ingest": f"ctr content ingest {mb(len(blob))}",
           "import": f"ctr images import {count}x{size} MiB layers",
           "reimport": f"ctr images import again {count}x{size} MiB (present)",
           "unpack": f"... again with unpack (native) {count}x{size} MiB"}  # fmt: skip
    return [
        Row(store, ops[op], got[op], base[op])
        for store, got in results.items()
        for op in ops
        if op in got and op in base
    ]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--size-mib", type=int, default=256)
    p.add_argument("--layers", default="4x32", help="COUNTxMiB of image layers")
    p.add_argument("--s3", action="store_true", help="also run on S3 (moto server)")
    p.add_argument("--unpack", action="store_true", help="also time unpacking the image")
    p.add_argument(
        "--delays",
        default="",
        help="with --s3: ms before each S3 request, one S3 case per value (e.g. 0,20)",
    )
    p.add_argument(
        "--floors",
        action="store_true",
        help="also ingest through stub_content_server.py (null, hash-write): what any Python "
        "gRPC plugin can reach here",
    )
    p.add_argument(
        "--write-modes",
        action="store_true",
        help="run every cargohold case with --write-behind and with --no-write-behind",
    )
    return p


if __name__ == "__main__":
    bench_main(parser(), measure, BASE)
