"""Shared benchmark helpers: payload, child steps, a moto server, timing, peak RSS, tables.

Each ``bench_<name>.py`` exposes ``parser()`` and ``measure(args) -> list[Row]``: one run that
starts its own emulator on 127.0.0.1, runs every measured transfer in a child process of its own
(so the peak RSS belongs to that transfer alone), stops the emulator by PID and returns one row
per (case, operation) of cargohold vs its baseline. ``bench_main`` runs that ``--repeat`` times
and prints each run's table and, after several runs, the spread.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[1]
LOG_DIR = REPO / "test-logs" / "bench"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the emulator launchers in tests/emulators

# Every benchmark moves this block repeated: incompressible, cheap to produce, digest known.
BLOCK = hashlib.shake_256(b"cargohold-bench").digest(8 * MiB)
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Measured:
    """One transfer: bytes moved, wall seconds, the child's peak RSS and what it reported.

    ``requests`` is what the latency proxy counted during the transfer (``None`` without one).
    """

    nbytes: int
    seconds: float
    peak_rss: int
    report: Mapping[str, object]
    requests: int | None = None

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / MiB / self.seconds if self.seconds > 0 else float("inf")

    @property
    def cpu_per_gib(self) -> float | None:
        """User + system CPU seconds of the client process per GiB moved (timed part only)."""
        cpu = self.report.get("cpu")
        if not isinstance(cpu, int | float) or not self.nbytes:
            return None
        return float(cpu) / (self.nbytes / (1024 * MiB))


@dataclass(frozen=True)
class Row:
    """One line of a table: cargohold vs the baseline (the raw SDK, or containerd's builtin)."""

    case: str
    operation: str
    ours: Measured
    base: Measured

    @property
    def ratio(self) -> float:
        return self.ours.mb_per_s / self.base.mb_per_s


# -- payload -----------------------------------------------------------------------------------


def payload_pieces(size: int) -> Iterator[bytes]:
    """The benchmark's ``size`` bytes, as BLOCK-sized pieces."""
    full, rest = divmod(size, len(BLOCK))
    for _ in range(full):
        yield BLOCK
    if rest:
        yield BLOCK[:rest]


def payload_digest(size: int) -> str:
    hasher = hashlib.sha256()
    for piece in payload_pieces(size):
        hasher.update(piece)
    return "sha256:" + hasher.hexdigest()


def write_payload(path: Path, size: int) -> str:
    """Write the payload to ``path`` (for steps that stream from a file); return its digest."""
    with path.open("wb") as out:
        for piece in payload_pieces(size):
            out.write(piece)
    return payload_digest(size)


class RepeatingReader(io.RawIOBase):
    """``size`` bytes made of one block repeated: a large, cheap, file-like source."""

    def __init__(self, block: bytes, size: int) -> None:
        self._block, self._size, self._pos = block, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos)
        done = 0
        while done < want:
            at = (self._pos + done) % len(self._block)
            n = min(want - done, len(self._block) - at)
            view[done : done + n] = self._block[at : at + n]
            done += n
        self._pos += done
        return done


class NullSink(io.RawIOBase):
    """A writable file that only counts what it is given."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        n = len(memoryview(data))
        self.count += n
        return n


# -- children ----------------------------------------------------------------------------------


def cargohold_file_step(
    url: str, ingest: bool, path: Path, digest: str, part: int, concurrency: int | None = None
) -> None:
    """In a child: ingest ``path`` into the store at ``url`` in ``part``-size pieces, digest
    known up front, or (``ingest`` false) read the blob back in one ``read_at``."""
    import cargohold

    size = path.stat().st_size
    store = cargohold.open_store(url, part_size=part, concurrency=concurrency)
    try:
        if ingest:
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


def run_child(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Measured:
    """Run ``argv``; it must print one JSON object with ``nbytes`` and ``seconds`` last.

    The peak RSS comes from the kernel's accounting of that child (``wait4``), in bytes.
    """
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, env={**os.environ, **(env or {})}, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]}... failed with {proc.returncode}:\n{out[-2000:]}")
    report = json.loads(out.strip().splitlines()[-1])
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return Measured(int(report["nbytes"]), float(report["seconds"]), rss, report)


def run_step(
    script: str, step: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> Measured:
    """Run one step of ``script`` in a child: ``script --child JSON`` (see ``child_step``)."""
    return run_child([sys.executable, script, "--child", json.dumps(step)], env=env)


def child_step(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    """In a child: the step ``run_step`` passed; ``None`` in the parent."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "--child":
        step: dict[str, Any] = json.loads(args[1])
        return step
    return None


_LAST_CPU: list[float] = []


def emit(nbytes: int, seconds: float, **extra: object) -> None:
    """What a child prints last: the figures ``run_child`` reads (with the CPU seconds of the
    last ``stopwatch`` of this process, unless ``cpu`` is given)."""
    if _LAST_CPU and "cpu" not in extra:
        extra["cpu"] = _LAST_CPU[-1]
    print(json.dumps({"nbytes": nbytes, "seconds": seconds, **extra}), flush=True)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` holds the elapsed wall seconds and ``t[1]``
    the process's CPU seconds in between (also what ``emit`` reports)."""
    box = [0.0, 0.0]
    cpu = cpu_seconds()
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start
        box[1] = cpu_seconds() - cpu
        _LAST_CPU.append(box[1])


def cpu_of(pid: int) -> float:
    """User + system CPU seconds a running process has used so far; 0 when unknown."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def peak_rss_of(pid: int) -> int:
    """A running process's peak RSS so far (``VmHWM``), in bytes; 0 when unknown."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


# -- emulators ---------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server of our own on 127.0.0.1 (stopped by PID at the end); yields its URL."""
    from tests.emulators._process import free_port, http_ready, running

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    os.environ.update(S3_CREDENTIALS)
    with running(argv, http_ready(url + "/moto-api/data.json"), name="moto", log_dir=LOG_DIR):
        yield url


@contextlib.contextmanager
def latency(url: str, delay_ms: float, mib_per_s: float = 0.0) -> Iterator[Any]:
    """A ``LatencyProxy`` in this (the parent) process in front of ``url``: ``delay_ms`` before
    each request, optionally a bandwidth cap. Its threads' CPU is not the measured child's."""
    from tests.emulators._latency import LatencyProxy

    with LatencyProxy(url, delay_ms / 1000, mib_per_s * MiB or None) as proxy:
        yield proxy


def counted(proxy: Any, run: Callable[[], Measured]) -> Measured:
    """Run one step and attach the requests the proxy forwarded meanwhile."""
    proxy.reset()
    measured = run()
    return replace(measured, requests=proxy.total)


def counted_steps(
    proxy: Any,
    script: str,
    steps: Sequence[str],
    common: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    key: str = "step",
) -> dict[str, Measured]:
    """Run each of ``steps`` of ``script`` in order, each in its own child, as ``counted`` does.

    A step's child gets ``{key: step, **common}``; the result maps each step to its measure.
    """
    return {
        step: counted(proxy, partial(run_step, script, {key: step, **common}, env))
        for step in steps
    }


@contextlib.contextmanager
def payload_file(size: int) -> Iterator[tuple[Path, str]]:
    """A temporary file holding ``size`` payload bytes, and its digest; removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload"
        yield path, write_payload(path, size)


# -- tables and the entry point ----------------------------------------------------------------


def mb(nbytes: int) -> str:
    return f"{nbytes / MiB:,.0f} MiB" if nbytes < 1024 * MiB else f"{nbytes / MiB / 1024:g} GiB"


def _rss(m: Measured) -> str:
    return f"{m.peak_rss / MiB:,.0f} MiB" if m.peak_rss else "-"


def _cpu(m: Measured) -> str:
    value = m.cpu_per_gib
    return "-" if value is None else f"{value:.2f}"


def _req(m: Measured) -> str:
    return "-" if m.requests is None else f"{m.requests:,}"


def ratio_table(rows: Sequence[Row], base: str = "SDK") -> str:
    """Markdown table of one run: MB/s of cargohold and the baseline, their ratio, client CPU
    seconds per GiB, requests (behind a latency proxy) and peak RSS."""
    lines = [
        f"| case | operation | cargohold MB/s | {base} MB/s | ratio"
        f" | cargohold CPU s/GiB | {base} CPU s/GiB | cargohold requests | {base} requests"
        f" | cargohold peak RSS | {base} peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.case} | {r.operation} | {r.ours.mb_per_s:,.1f} | {r.base.mb_per_s:,.1f} | "
            f"{r.ratio:.2f} | {_cpu(r.ours)} | {_cpu(r.base)} | {_req(r.ours)} | {_req(r.base)}"
            f" | {_rss(r.ours)} | {_rss(r.base)} |"
        )
    return "\n".join(lines)


def spread_table(runs: Sequence[Sequence[Row]], base: str = "SDK") -> str:
    """Markdown table over several runs: min-max MB/s, median and range of the ratio."""

    def span(values: Sequence[float], fmt: str = ",.1f") -> str:
        return f"{min(values):{fmt}}-{max(values):{fmt}}"

    def cpu(values: Sequence[float | None]) -> str:
        known = [v for v in values if v is not None]
        return f"{statistics.median(known):.2f}" if known else "-"

    lines = [
        f"| case | operation | cargohold MB/s | {base} MB/s | ratio median (range)"
        f" | cargohold CPU s/GiB | {base} CPU s/GiB | requests (cargohold / {base})"
        " | cargohold peak RSS (max) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, first in enumerate(runs[0]):
        same = [run[i] for run in runs]
        ratios = [r.ratio for r in same]
        rss = max(r.ours.peak_rss for r in same)
        lines.append(
            f"| {first.case} | {first.operation} | {span([r.ours.mb_per_s for r in same])} | "
            f"{span([r.base.mb_per_s for r in same])} | {statistics.median(ratios):.2f} "
            f"({span(ratios, '.2f')}) | {cpu([r.ours.cpu_per_gib for r in same])} | "
            f"{cpu([r.base.cpu_per_gib for r in same])} | {_req(first.ours)} / "
            f"{_req(first.base)} | {rss / MiB:,.0f} MiB |"
        )
    return "\n".join(lines)


def bench_main(
    parser: argparse.ArgumentParser,
    measure: Callable[[argparse.Namespace], list[Row]],
    base: str = "SDK",
    child: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """In a child: run its step. Else parse the command line, run ``measure`` ``--repeat``
    times and print the tables."""
    if child is not None and (step := child_step()) is not None:
        child(step)
        return
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on a fresh emulator")
    repeat(parser.parse_args(), measure, base)


def repeat(
    args: argparse.Namespace,
    measure: Callable[[argparse.Namespace], list[Row]],
    base: str = "SDK",
) -> list[list[Row]]:
    runs: list[list[Row]] = []
    for n in range(1, args.repeat + 1):
        runs.append(measure(args))
        print(f"\nrun {n}:\n{ratio_table(runs[-1], base)}", flush=True)
    if len(runs) > 1:
        print(f"\nover {len(runs)} runs:\n{spread_table(runs, base)}", flush=True)
    return runs


@functools.cache
def go_program(name: str) -> Path:
    """``benchmarks/NAME`` (a Go program) built offline against Debian's containerd sources,
    once per process; the build is removed at exit."""
    import atexit
    import shutil

    from tests.plugin.gorunner import go_build

    work = Path(tempfile.mkdtemp(prefix=f"chb-{name}-"))
    atexit.register(shutil.rmtree, work, True)
    return go_build(Path(__file__).resolve().parent / name, work, name, test=False)
