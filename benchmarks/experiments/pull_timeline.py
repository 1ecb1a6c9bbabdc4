"""The timeline of one ``ctr images pull`` through ``cargohold serve`` on S3 behind a delay.

Pushes a small image (``--layers 2x16``) to a local ``docker-registry``, then pulls it with
unpacking (``--snapshotter native``) on a fresh containerd whose content plugin is
``cargohold serve`` on a moto server behind the latency proxy (``--delay-ms``). The serve
process is this script (``_serve`` below): it patches, in its own process only, the driver
wrapper's per-request ``_Call`` and the RPC ``CallTracker`` so that every driver request (with
its key, thread and the RPC running on that thread) and every RPC (with its Write messages) is
written as one JSON line to a log. The proxy logs each HTTP request's method and path. All
times are ``time.monotonic()`` (one clock for every process of the machine), printed relative
to the moment ``ctr`` starts.

    python benchmarks/experiments/pull_timeline.py [--layers 2x16] [--delay-ms 20]
                                                   [--runs 2] [--out DIR]

Writes DIR/run-N.json (every record) and prints, per run, the condensed timeline.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))

_HEX = re.compile(r"[0-9a-f]{64}")


def short(key: str | None, names: dict[str, str] | None = None) -> str:
    """``store/blobs/sha256/<hex>`` -> ``blob/<8 hex>`` (or the blob's name), and so on."""
    if not key:
        return ""
    key = key.removeprefix("store/")

    def name(m: re.Match[str]) -> str:
        hex_ = m.group(0)
        return (names or {}).get(hex_, hex_[:8])

    key = key.replace("blobs/sha256/", "blob/")
    return _HEX.sub(name, key)


# -- the serve process ------------------------------------------------------------------------


class _Log:
    """JSON lines written unbuffered with ``os.write`` (the server ends with ``os._exit``)."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def __call__(self, **record: Any) -> None:
        os.write(self._fd, (json.dumps(record) + "\n").encode())


def _serve(log_path: str, argv: list[str]) -> None:
    """Run ``cargohold serve argv`` with every driver request and RPC logged to ``log_path``."""
    from cargohold.drivers import wrapper
    from cargohold.plugin import calls
    from cargohold.plugin.command import serve

    log = _Log(log_path)
    current = threading.local()

    base_call: Any = wrapper._Call

    class LoggedCall(base_call):  # type: ignore[misc]
        __slots__ = ("_t0",)

        def __init__(self, observer: Any, driver: str, operation: str, key: str | None) -> None:
            super().__init__(observer, driver, operation, key)
            self._t0 = 0.0

        def __enter__(self) -> None:
            self._t0 = time.monotonic()
            super().__enter__()

        def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
            t1 = time.monotonic()
            super().__exit__(kind, exc, tb)
            ok = exc is None or isinstance(exc, GeneratorExit)
            log(
                ev="drv",
                op=self._operation,
                key=self._key,
                t0=self._t0,
                t1=t1,
                ok=ok if ok else type(exc).__name__,
                thread=threading.current_thread().name,
                rpc=getattr(current, "rpc", None),
            )

    wrapper._Call = LoggedCall  # type: ignore[misc]

    tracker: Any = calls.CallTracker
    begin, end, requests = tracker._begin, tracker._end, tracker._requests
    answered, subject = tracker.answered, calls._subject

    def _begin(self: Any, service: str, method: str, context: Any) -> Any:
        call = begin(self, service, method, context)
        current.rpc = call.id
        log(ev="rpc0", id=call.id, method=method, t=call.started)
        return call

    def _end(self: Any, call: Any, failed: bool) -> None:
        end(self, call, failed)
        if getattr(current, "rpc", None) == call.id:
            current.rpc = None
        log(ev="rpc1", id=call.id, method=call.method, subject=call.subject, t=time.monotonic())

    def _requests(self: Any, call: Any, messages: Iterator[Any]) -> Iterator[Any]:
        for message in requests(self, call, messages):
            current.rpc = call.id
            fields = {n: getattr(message, n, None) for n in ("action", "offset", "total")}
            data = getattr(message, "data", b"")
            log(ev="msg", id=call.id, t=time.monotonic(), size=len(data), **fields)
            yield message

    def _answered(
        self: Any, service: str, method: str, received: int, sent: int, since: float
    ) -> None:
        answered(self, service, method, received, sent, since)
        log(ev="fast", method=method, t0=since, t1=time.monotonic())

    def _subject(message: object) -> str:
        rpc = getattr(current, "rpc", None)
        fields = {n: getattr(message, n, None) for n in ("offset", "size")}
        log(ev="req", id=rpc, t=time.monotonic(), **fields)
        return subject(message)

    tracker._begin, tracker._end, tracker._requests = _begin, _end, _requests
    tracker.answered = _answered
    setattr(calls, "_subject", _subject)  # noqa: B010
    serve(args=argv, prog_name="cargohold serve")


# -- the pulling parent -----------------------------------------------------------------------


def _proxy_class() -> Any:
    from tests.emulators._latency import LatencyProxy

    class LoggingProxy(LatencyProxy):
        """The latency proxy, also keeping (time, method, path, ranged) of each request."""

        def __init__(self, target: str, delay: float = 0.0) -> None:
            super().__init__(target, delay)
            self.log: list[tuple[float, str, str]] = []

        def count(self, data: bytes) -> None:
            now = time.monotonic()
            super().count(data)
            line = data[: max(data.find(b"\r\n"), 0)].decode("latin-1").split(" ")
            if len(line) == 3 and line[2].startswith("HTTP/"):
                ranged = " (ranged)" if b"\r\nrange:" in data[:8192].lower() else ""
                entry = (now, line[0] + ranged, line[1])
            else:  # a body sent after the server's "100 Continue": one more delay
                entry = (now, "(body)", "")
            with self._lock:
                self.log.append(entry)

    return LoggingProxy


@contextlib.contextmanager
def _stack(delay_ms: float, log_path: Path) -> Iterator[tuple[Any, Any, int]]:
    """moto, the logging proxy, this script as ``cargohold serve`` and a containerd."""
    import boto3
    from _common import LOG_DIR, S3_CREDENTIALS, moto_server
    from tests.emulators._process import running
    from tests.emulators.containerd import containerd_process

    os.environ.update(S3_CREDENTIALS)
    with (
        moto_server() as endpoint,
        _proxy_class()(endpoint, delay_ms / 1000) as proxy,
        tempfile.TemporaryDirectory(prefix="chb-tl-", dir="/tmp") as d,
    ):
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        url = f"s3://bench/store?endpoint_url={proxy.url}&region=us-east-1"
        sock = Path(d) / "content.sock"
        argv = [sys.executable, __file__, "_serve", str(log_path), "--address", f"unix://{sock}",
                "--store", url, "--node-id", "bench", "--engine", "h2"]  # fmt: skip
        with (
            running(argv, sock.exists, name="timeline-serve", log_dir=LOG_DIR) as serve,
            containerd_process(Path(d), sock, name="timeline") as host,
        ):
            yield host, proxy, serve.pid


def _one_pull(ref: str, delay_ms: float, out: Path, run: int) -> dict[str, Any]:
    from _common import cpu_of

    log_path = out / f"run-{run}.serve.jsonl"
    log_path.unlink(missing_ok=True)
    with _stack(delay_ms, log_path) as (host, proxy, serve_pid):
        time.sleep(0.5)  # let the startup's probes settle
        with proxy._lock:
            proxy.log.clear()
        cpu0 = cpu_of(serve_pid)
        t_start = time.monotonic()
        host.ctr("images", "pull", "--plain-http", "--snapshotter", "native", ref, timeout=600)
        t_end = time.monotonic()
        cpu = cpu_of(serve_pid) - cpu0
        time.sleep(0.2)
        http = list(proxy.log)
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    return {"start": t_start, "end": t_end, "serve_cpu": cpu, "http": http, "serve": records}


def _render(result: dict[str, Any], names: dict[str, str]) -> str:
    """The condensed timeline: driver requests and RPCs of the pull, relative ms."""
    t0: float = result["start"]

    def ms(t: float) -> float:
        return (t - t0) * 1000

    rpcs: dict[int, dict[str, Any]] = {}
    for r in result["serve"]:
        if r["ev"] == "rpc0":
            rpcs[r["id"]] = {"method": r["method"], "t0": r["t"], "msgs": []}
        elif r["ev"] == "rpc1" and r["id"] in rpcs:
            rpcs[r["id"]].update(t1=r["t"], subject=r["subject"])
        elif r["ev"] == "msg" and r["id"] in rpcs:
            rpcs[r["id"]]["msgs"].append(r)
    names = dict(names)
    for c in rpcs.values():  # ingest/<sha256(ref)>/... -> ingest/<ref>/...
        if c["method"] == "Write" and c.get("subject"):
            ref_hash = hashlib.sha256(c["subject"].encode()).hexdigest()
            names[ref_hash] = short(c["subject"], names)
    lines = [f"pull {ms(result['end']):.0f} ms, serve CPU {result['serve_cpu']:.2f} s"]
    events: list[tuple[float, str]] = []
    for cid, c in rpcs.items():
        if c["t0"] < t0 - 0.01 or c["method"] in ("Check", "Watch"):
            continue
        subject = short(c.get("subject", ""), names)
        end = ms(c["t1"]) if "t1" in c else float("nan")
        events.append((ms(c["t0"]), f"  RPC#{cid} {c['method']} {subject} -> {end:.0f}"))
        for m in c["msgs"]:
            act = {0: "STAT", 1: "WRITE", 2: "COMMIT"}.get(m["action"], m["action"])
            if act != "WRITE" or m["offset"] == 0 or m["size"] == 0:
                events.append((ms(m["t"]), f"    #{cid} msg {act} off={m['offset']} n={m['size']}"))
    n_read_fast = sum(1 for r in result["serve"] if r["ev"] == "fast" and r["t0"] >= t0)
    n_read = sum(1 for c in rpcs.values() if c["method"] == "Read" and c["t0"] >= t0)
    for r in result["serve"]:
        if r["ev"] != "drv" or r["t0"] < t0 - 0.01:
            continue
        rpc = rpcs.get(r["rpc"]) if r["rpc"] else None
        by = f"{rpc['method']}#{r['rpc']}" if rpc else f"({r['thread']})"
        ok = "" if r["ok"] is True else f" !{r['ok']}"
        text = f"{ms(r['t0']):7.0f} {ms(r['t1']):7.0f} {r['op']:<14} {short(r['key'], names)}"
        events.append((ms(r["t0"]), f"{text} [{by}]{ok}"))
    lines += [line for _, line in sorted(events, key=lambda e: e[0])]
    lines.append(f"Read RPCs: {n_read} by handler, {n_read_fast} on the fast path")
    lines.append(_summary(result))
    return "\n".join(lines)


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def _summary(result: dict[str, Any]) -> str:
    """Request counts, and how much of each phase has at least one request in flight."""
    t0, t_end = result["start"], result["end"]
    drv = [r for r in result["serve"] if r["ev"] == "drv" and t0 <= r["t0"] <= t_end]
    http = [h for h in result["http"] if t0 <= h[0] <= t_end]
    bodies = sum(1 for h in http if h[1] == "(body)")
    writes = [r for r in result["serve"] if r["ev"] == "rpc1" and r["method"] == "Write"]
    fetched = max((r["t"] for r in writes), default=t0)
    out = [
        f"driver requests {len(drv)}, HTTP exchanges {len(http)} ({bodies} of them bodies "
        "sent after 100 Continue)"
    ]
    for name, a, b in (("fetch", t0, fetched), ("unpack", fetched, t_end)):
        spans = [(max(r["t0"], a), min(r["t1"], b)) for r in drv if r["t1"] > a and r["t0"] < b]
        busy = _union(spans)
        out.append(
            f"{name}: {1000 * (b - a):.0f} ms, >=1 request in flight {1000 * busy:.0f} ms, "
            f"none {1000 * (b - a - busy):.0f} ms"
        )
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_serve":
        _serve(sys.argv[2], sys.argv[3:])
        return
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--layers", default="2x16", help="COUNTxMiB of image layers")
    p.add_argument("--delay-ms", type=float, default=20.0)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--out", default="/tmp/pull-timeline")
    args = p.parse_args()
    from _registry import push, registry
    from tests.plugin.oci import build_image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    count, size = (int(x) for x in args.layers.split("x"))
    image = build_image("bench/pull:1", [size * 1024 * 1024] * count, seed=5)
    names: dict[str, str] = {}
    for digest, data in image.blobs.items():
        kind = "layer" if len(data) >= 1024 * 1024 else "small"
        names[digest.split(":")[1]] = f"{kind}-{digest.split(':')[1][:8]}"
    with tempfile.TemporaryDirectory(prefix="chb-tl-img-") as work, registry() as reg:
        archive = Path(work) / "image.tar"
        archive.write_bytes(image.tar)
        ref = f"{reg}/bench/pull:1"
        push(archive, ref)
        for run in range(1, args.runs + 1):
            result = _one_pull(ref, args.delay_ms, out, run)
            result["names"] = names
            (out / f"run-{run}.json").write_text(json.dumps(result))
            print(f"== run {run}")
            print(_render(result, names), flush=True)


if __name__ == "__main__":
    main()
