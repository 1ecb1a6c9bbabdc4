"""Server CPU per 32 KiB Read RPC across Python gRPC stacks (rpcfloor experiment, not shipped).

    python rpcfloor_bench.py [--rounds 2] [--clients py,go] [--go-client PATH] KIND...

Each KIND (see VARIANTS) is started from rpcfloor_server.py on a unix socket with one random
32 MiB blob; the Python grpcio client reads it 3 times in 32 KiB Read RPCs exactly as
bench_read_rpc.py does (take the data, cancel), checking every byte; then the Go client
(containerd's remoteReaderAt.ReadAt, rebuilt) does the same. Kinds alternate within a round.
Server CPU is user+system from /proc. Results are also appended as JSON lines to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from cargohold.plugin.gen import content_pb2_grpc as pb_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_read_rpc import read_pass, serving  # the same server start and the same reads

HERE = Path(__file__).resolve().parent
DIGEST = "sha256:" + "0" * 64
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "sync": ("sync", {}),
    "sync-w1": ("sync", {"STUB_WORKERS": "1"}),
    "sync-latency": (
        "sync",
        {"STUB_GRPC_OPTIONS": json.dumps([["grpc.optimization_target", "latency"]])},
    ),
    "sync-nolookahead": (
        "sync",
        {"STUB_GRPC_OPTIONS": json.dumps([["grpc.http2.lookahead_bytes", 65535]])},
    ),
    "sync-1cq": ("sync", {"GRPC_PYTHON_FORK_SUPPORT": "0", "GRPC_POLL_STRATEGY": "poll"}),
    "sync-nobdp": (
        "sync",
        {"STUB_GRPC_OPTIONS": json.dumps([["grpc.http2.bdp_probe", 0]])},
    ),
    "aio": ("aio", {}),
    "aio-uvloop": ("aio-uvloop", {}),
    "grpclib": ("grpclib", {}),
    "grpclib-uvloop": ("grpclib-uvloop", {}),
    "h2mini": ("h2mini", {}),
    "h2mini-uvloop": ("h2mini-uvloop", {}),
    "h2mini-uvloop-thread": ("h2mini-uvloop", {"H2MINI_THREAD": "1"}),
}


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


@contextlib.contextmanager
def server(
    kind: str, work: Path, blob_file: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    sock = work / f"{kind}-{time.monotonic_ns()}.sock"
    real, env = VARIANTS[kind]
    cmd = [sys.executable, str(HERE / "rpcfloor_server.py"), str(sock), str(blob_file), real]
    with serving(cmd, sock, work / f"{kind}.log", env) as proc:
        time.sleep(0.2)
        yield proc, sock


def py_client(kind: str, pid: int, sock: Path, blob: bytes, passes: int, out: list[dict]) -> None:
    size, piece = len(blob), 32 << 10
    with grpc.insecure_channel(f"unix://{sock}") as channel:
        stub = pb_grpc.ContentStub(channel)  # type: ignore[no-untyped-call]
        read_pass(stub, DIGEST, 4 << 20, piece, expect=blob)
        for n in range(passes):
            (u0, s0), wall = cpu_split(pid), time.monotonic()
            rpcs, ok = read_pass(stub, DIGEST, size, piece, expect=blob), True
            (u1, s1), wall = cpu_split(pid), time.monotonic() - wall
            rec = {
                "kind": kind,
                "client": "py",
                "pass": n + 1,
                "rpcs": rpcs,
                "ok": ok,
                "cpu_us": (u1 + s1 - u0 - s0) * 1e6 / rpcs,
                "wall_us": wall * 1e6 / rpcs,
                "user_us": (u1 - u0) * 1e6 / rpcs,
                "sys_us": (s1 - s0) * 1e6 / rpcs,
            }
            out.append(rec)
            print(
                f"{kind:16} py pass {n + 1}: server CPU {rec['cpu_us']:.0f} us/RPC, wall "
                f"{rec['wall_us']:.0f} us/RPC, {'bytes ok' if ok else 'BYTES DIFFER'}"
                f" (user {rec['user_us']:.0f} sys {rec['sys_us']:.0f})",
                flush=True,
            )


def go_client(
    kind: str, pid: int, sock: Path, blob_file: Path, gocli: str, passes: int, out: list[dict]
) -> None:
    cmd = [
        gocli,
        "-sock",
        str(sock),
        "-pid",
        str(pid),
        "-passes",
        str(passes),
        "-expect",
        str(blob_file),
        "-label",
        f"{kind:16} go",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        print(f"{kind} go client failed: {res.stderr}", flush=True)
        return
    for line in res.stdout.splitlines():
        print(line, flush=True)
        # "<label> pass N: R RPCs, server CPU X us/RPC, wall Y us/RPC, bytes ok"
        tail = line.split(" pass ", 1)[1]
        n = int(tail.split(":")[0])
        cpu = float(tail.split("server CPU ")[1].split(" ")[0])
        wall = float(tail.split("wall ")[1].split(" ")[0])
        user = float(tail.split("(user ")[1].split(" ")[0])
        sys_ = float(tail.split(" sys ")[1].rstrip(")"))
        out.append(
            {
                "kind": kind,
                "client": "go",
                "pass": n,
                "ok": "bytes ok" in line,
                "cpu_us": cpu,
                "wall_us": wall,
                "user_us": user,
                "sys_us": sys_,
            }
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("kinds", nargs="+", choices=sorted(VARIANTS))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--clients", default="py", help="py, and go with --go-client")
    p.add_argument(
        "--go-client",
        default="",
        help="a Go program reading the blob in Read RPCs as containerd's proxy ReaderAt does "
        "(same arguments and output as the Python client; not part of the repository)",
    )
    p.add_argument("--out", default="/tmp/rpcfloor/results.jsonl")
    args = p.parse_args()
    clients = args.clients.split(",")
    blob = os.urandom(32 << 20)
    with tempfile.TemporaryDirectory(prefix="rpcfloor-") as tmp:
        work = Path(tmp)
        blob_file = work / "blob"
        blob_file.write_bytes(blob)
        for rnd in range(args.rounds):
            for kind in args.kinds:
                out: list[dict] = []
                with server(kind, work, blob_file) as (proc, sock):
                    if "py" in clients:
                        py_client(kind, proc.pid, sock, blob, args.passes, out)
                    if "go" in clients:
                        go_client(kind, proc.pid, sock, blob_file, args.go_client, args.passes, out)
                    alive = proc.poll() is None
                with open(args.out, "a") as f:
                    for rec in out:
                        f.write(json.dumps({**rec, "round": rnd, "alive": alive}) + "\n")


if __name__ == "__main__":
    main()
