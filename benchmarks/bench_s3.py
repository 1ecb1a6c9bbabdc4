"""S3 on one moto server: cargohold ingest / read back vs boto3's transfer manager.

    python benchmarks/bench_s3.py [--sizes 256,1024] [--part-size 8] [--concurrency 4]
                                  [--endpoint http://127.0.0.1:PORT] [--write-docs]

Each transfer runs in its own child process (its peak RSS is reported). cargohold ingests with
the expected digest known (the multipart upload completes straight into the blob key) and reads
back with ``read_at`` windows of part size x concurrency; boto3 uses ``upload_fileobj`` and
``download_fileobj`` with the same part size and concurrency.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Measured, MiB, NullSink, RepeatingReader, emit, mb, ratio_table, run_child

REPO = Path(__file__).resolve().parents[1]
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BLOCK = hashlib.shake_256(b"cargohold-bench").digest(8 * MiB)


def _digest(size: int) -> str:
    """sha256 of the benchmark's bytes of ``size`` (BLOCK repeated)."""
    hasher = hashlib.sha256()
    full, rest = divmod(size, len(BLOCK))
    for _ in range(full):
        hasher.update(BLOCK)
    hasher.update(BLOCK[:rest])
    return "sha256:" + hasher.hexdigest()


# -- children: one transfer each ---------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    import boto3
    from boto3.s3.transfer import TransferConfig

    size, part, conc = args.size, args.part_size * MiB, args.concurrency
    if args.child.startswith("cargohold"):
        import cargohold
        from cargohold import Descriptor

        url = f"s3://{args.bucket}/store?endpoint_url={args.endpoint}&addressing_style=path"
        store = cargohold.open_store(url, part_size=part, concurrency=conc)
        if args.child == "cargohold-ingest":
            start = time.perf_counter()
            with store.writer(f"bench-{size}", Descriptor(digest=args.digest, size=size)) as w:
                full, rest = divmod(size, len(BLOCK))
                for _ in range(full):
                    w.write(BLOCK)
                w.write(BLOCK[:rest])
                w.commit(size, args.digest)
            emit(size, time.perf_counter() - start)
        else:
            start = time.perf_counter()
            window, got = part * conc, 0
            with store.reader_at(args.digest) as reader:
                while got < reader.size:
                    got += len(reader.read_at(got, window))
            emit(got, time.perf_counter() - start)
        store.close()
        return
    client = boto3.client("s3", endpoint_url=args.endpoint)
    config = TransferConfig(
        multipart_threshold=part, multipart_chunksize=part, max_concurrency=conc
    )
    key = f"boto3/{size}"
    start = time.perf_counter()
    if args.child == "boto3-ingest":
        client.upload_fileobj(RepeatingReader(BLOCK, size), args.bucket, key, Config=config)
        emit(size, time.perf_counter() - start)
    else:
        sink = NullSink()
        client.download_fileobj(args.bucket, key, sink, Config=config)
        emit(sink.count, time.perf_counter() - start)


# -- parent ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(REPO / "test-logs" / f"bench-moto-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/moto-api/data.json", timeout=2).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto server did not start")


def _run(args: argparse.Namespace, which: str, size: int, bucket: str, digest: str) -> Measured:
    argv = [
        sys.executable,
        __file__,
        "--child", which,
        "--size", str(size),
        "--bucket", bucket,
        "--endpoint", args.endpoint,
        "--digest", digest,
        "--part-size", str(args.part_size),
        "--concurrency", str(args.concurrency),
    ]  # fmt: skip
    return run_child(argv, env=CREDENTIALS)


def _write_docs(table: str, args: argparse.Namespace) -> None:
    path = REPO / "docs" / "performance.md"
    text = path.read_text() if path.exists() else "# Performance\n"
    section = (
        "## S3 (moto server on loopback)\n\n"
        f"`python benchmarks/bench_s3.py` — part size {args.part_size} MiB, concurrency "
        f"{args.concurrency}, one moto server, {os.cpu_count()} CPUs shared with other work. "
        "MB/s are MiB per second of wall time; peak RSS is the whole child process "
        "(interpreter, boto3 and moto client included). Ingest ratio = cargohold / boto3 "
        "`upload_fileobj`; read ratio = cargohold `read_at` / boto3 `download_fileobj`.\n\n"
        f"{table}\n"
    )
    pattern = re.compile(r"## S3 \(moto server on loopback\)\n.*?(?=\n## |\Z)", re.S)
    text = (
        pattern.sub(section.rstrip("\n"), text)
        if pattern.search(text)
        else (text.rstrip("\n") + "\n\n" + section)
    )
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,1024", help="blob sizes in MiB")
    parser.add_argument("--part-size", type=int, default=8, help="MiB")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--child", default="")
    parser.add_argument("--size", type=int, default=0)
    parser.add_argument("--bucket", default="")
    parser.add_argument("--digest", default="")
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    os.environ.update(CREDENTIALS)
    (REPO / "test-logs").mkdir(exist_ok=True)
    server = None
    if not args.endpoint:
        server, args.endpoint = _start_moto()
    try:
        import boto3

        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=args.endpoint).create_bucket(Bucket=bucket)
        rows = []
        for size_mib in (int(s) for s in args.sizes.split(",")):
            size = size_mib * MiB
            digest = _digest(size)
            ours_in = _run(args, "cargohold-ingest", size, bucket, digest)
            sdk_in = _run(args, "boto3-ingest", size, bucket, digest)
            ours_out = _run(args, "cargohold-read", size, bucket, digest)
            sdk_out = _run(args, "boto3-read", size, bucket, digest)
            rows += [(mb(size), "ingest", ours_in, sdk_in), (mb(size), "read", ours_out, sdk_out)]
            print(ratio_table(rows[-2:]).splitlines()[-2:], flush=True)
        table = ratio_table(rows)
        print(table)
        if args.write_docs:
            _write_docs(table, args)
    finally:
        if server is not None:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
