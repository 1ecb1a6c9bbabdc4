"""CPU per Read RPC: a blob read in 32 KiB Read RPCs, one after another, as containerd unpacks.

    python benchmarks/bench_read_rpc.py [--server cargohold|cargohold-h2|stub|gofloor]
                                        [--client python|go] [--size-mib 32] [--piece-kib 32]
                                        [--passes 3] [--profile OUT.svg]

Starts ``cargohold serve`` on a file:// store holding one random blob (``cargohold-h2``: with
``--engine h2``, the hand-written HTTP/2 layer instead of grpcio's server; or the stub content
server in ``read`` mode, grpcio's own floor: a minimal servicer answering Read from memory),
then reads the blob ``--passes`` times in Read RPCs of ``--piece-kib`` each, the way
containerd's proxy ``ReaderAt`` does: one RPC per piece, the client taking the data and
cancelling the call without waiting for its status. Prints the server process's CPU
(user + system, from /proc) and the wall time per RPC, per pass. ``--profile`` records the
server with py-spy during the passes (a flame graph). Every process started here is stopped by
PID.

``--server gofloor`` serves the blob with containerd's own content service over its local
store (``benchmarks/gofloor``, Go). ``--client go`` reads with containerd's own proxy client
instead of grpcio's (``benchmarks/goread``, built offline against Debian's containerd sources;
it checks the digest of what it read), and also prints that client's CPU per RPC.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from cargohold import open_store
from cargohold.helpers import write_blob
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.gen import content_pb2_grpc as pb_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import go_program

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _store_blob(store_url: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open_store(store_url) as store:
        write_blob(store, "bench-read", io.BytesIO(data), expected=digest)
    return digest


def go_read_pass(sock: Path, digest: str, size: int, piece: int) -> tuple[int, float]:
    """One pass with containerd's proxy client (``goread``): its RPCs and its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [str(go_program("goread")), str(sock), digest, str(size), str(piece)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"goread failed: {done.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return int(done.stdout.split()[0]), cpu


@contextlib.contextmanager
def _server(kind: str, work: Path, data: bytes) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    sock = work / "content.sock"
    if kind == "gofloor":
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs = work / "floor" / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        (blobs / digest[7:]).write_bytes(data)
        cmd = [str(go_program("gofloor")), str(sock), str(work / "floor")]
    elif kind.startswith("stub"):
        cmd = [sys.executable, str(REPO / "benchmarks" / "stub_content_server.py"), str(sock)]
        cmd.append("read-aio" if kind == "stub-aio" else "read")
        digest = "sha256:" + "0" * 64
    else:
        url = f"file://{work}/store"
        digest = _store_blob(url, data)
        cmd = [str(VENV_BIN / "cargohold"), "serve", "--address", f"unix://{sock}"]
        cmd += ["--store", url, "--node-id", "bench", "--log-level", "warning"]
        cmd += ["--engine", "h2" if kind == "cargohold-h2" else "grpcio"]
    with serving(cmd, sock, work / "server.log") as proc:
        yield proc, digest


@contextlib.contextmanager
def serving(
    cmd: list[str], sock: Path, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` until its unix socket ``sock`` appears (30 s at most); stop it by PID."""
    log = log_path.open("wb")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {log_path.read_text()}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def read_pass(
    stub: pb_grpc.ContentStub,
    digest: str,
    size: int,
    piece: int,
    cancel: bool = True,
    expect: bytes | None = None,
) -> int:
    """Read ``size`` bytes in ``piece``-byte Read RPCs; return the number of RPCs. With
    ``expect`` (the blob), every piece is compared with it (SystemExit if one differs)."""
    rpcs = 0
    for offset in range(0, size, piece):
        want = min(piece, size - offset)
        call = stub.Read(pb.ReadContentRequest(digest=digest, offset=offset, size=want))
        got: list[bytes] = []
        n = 0
        for resp in call:
            got.append(resp.data)
            n += len(resp.data)
            if n >= want and cancel:
                break
        call.cancel()  # as containerd's ReaderAt: data in hand, the status is not awaited
        if n != want:
            raise SystemExit(f"short read at {offset}: {n} of {want}")
        if expect is not None and b"".join(got) != expect[offset : offset + want]:
            raise SystemExit(f"wrong bytes at {offset}")
        rpcs += 1
    return rpcs


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--server",
        choices=("cargohold", "cargohold-h2", "stub", "stub-aio", "gofloor"),
        default="cargohold",
    )
    p.add_argument("--client", choices=("python", "go"), default="python")
    p.add_argument("--size-mib", type=int, default=32)
    p.add_argument("--piece-kib", type=int, default=32)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--await-status", action="store_true", help="read each call to its end")
    p.add_argument("--profile", help="py-spy flame graph of the server during the passes")
    p.add_argument("--spy-args", nargs="*", default=[], help="more py-spy record arguments")
    args = p.parse_args()
    if args.client == "go" and args.server.startswith("stub"):
        p.error("--client go checks the blob's digest: use a real server, not the stub")
    size, piece = args.size_mib << 20, args.piece_kib << 10
    data = os.urandom(size)
    with (
        tempfile.TemporaryDirectory(prefix="chb-readrpc-") as tmp,
        _server(args.server, Path(tmp), data) as (proc, digest),
        grpc.insecure_channel(f"unix://{tmp}/content.sock") as channel,
    ):
        stub = pb_grpc.ContentStub(channel)  # type: ignore[no-untyped-call]
        read_pass(stub, digest, min(size, 4 << 20), piece)  # warm-up
        spy = None
        if args.profile:
            spy_cmd = [str(VENV_BIN / "py-spy"), "record", "-p", str(proc.pid), "-o"]
            spy_cmd += [args.profile, "--threads", "--nonblocking", "-r", "200", *args.spy_args]
            spy = subprocess.Popen(spy_cmd)
            time.sleep(1.0)
        for n in range(args.passes):
            cpu, wall = cpu_seconds(proc.pid), time.monotonic()
            client = ""
            if args.client == "go":
                rpcs, client_cpu = go_read_pass(Path(tmp) / "content.sock", digest, size, piece)
                client = f", client CPU {client_cpu * 1e6 / rpcs:.0f} us/RPC"
            else:
                rpcs = read_pass(stub, digest, size, piece, not args.await_status)
            cpu, wall = cpu_seconds(proc.pid) - cpu, time.monotonic() - wall
            print(
                f"{args.server} pass {n + 1}: {rpcs} RPCs, server CPU {cpu * 1e6 / rpcs:.0f}"
                f" us/RPC ({cpu * (1 << 30) / size:.1f} s/GiB), wall {wall * 1e6 / rpcs:.0f}"
                f" us/RPC{client}",
                flush=True,
            )
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)


if __name__ == "__main__":
    main()
