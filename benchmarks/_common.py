"""Shared benchmark helpers: timing, MB/s, a child process's peak RSS, and a ratio table.

Each ``bench_<driver>.py`` runs every measured transfer in a child process of its own (so the
peak RSS belongs to that transfer alone) and prints one table of cargohold vs the raw SDK.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Measured:
    """One transfer: bytes moved, wall seconds, the child's peak RSS and what it reported."""

    nbytes: int
    seconds: float
    peak_rss: int
    report: dict[str, object]

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / MiB / self.seconds if self.seconds > 0 else float("inf")


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` holds the elapsed wall seconds."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def run_child(argv: Sequence[str], *, env: dict[str, str] | None = None) -> Measured:
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
        raise RuntimeError(f"{argv[:3]}... failed with {proc.returncode}:\n{out[-2000:]}")
    report = json.loads(out.strip().splitlines()[-1])
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return Measured(int(report["nbytes"]), float(report["seconds"]), rss, report)


def emit(nbytes: int, seconds: float, **extra: object) -> None:
    """What a child prints last: the figures ``run_child`` reads."""
    print(json.dumps({"nbytes": nbytes, "seconds": seconds, **extra}), flush=True)


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


def mb(nbytes: int) -> str:
    return f"{nbytes / MiB:,.0f} MiB" if nbytes < 1024 * MiB else f"{nbytes / MiB / 1024:g} GiB"


def ratio_table(rows: Sequence[tuple[str, str, Measured, Measured]]) -> str:
    """Markdown table: (size, operation, cargohold, sdk) per row, with the ratio of MB/s."""
    lines = [
        "| size | operation | cargohold MB/s | SDK MB/s | ratio"
        " | cargohold peak RSS | SDK peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for size, op, ours, theirs in rows:
        lines.append(
            f"| {size} | {op} | {ours.mb_per_s:,.1f} | {theirs.mb_per_s:,.1f} | "
            f"{ours.mb_per_s / theirs.mb_per_s:.2f} | {ours.peak_rss / MiB:,.0f} MiB | "
            f"{theirs.peak_rss / MiB:,.0f} MiB |"
        )
    return "\n".join(lines)
