"""Interruptions never put bytes under a digest they do not have.

An exception is injected at every line the writer runs (through ``sys.settrace``, as a signal
handler's KeyboardInterrupt would land between two bytecodes), during writes, checkpoints, close
and commit. The ingestion is then re-run as a user would (resume at the writer's offset without
an expected digest, the case where only the writer's own hash names the blob) and the store
must hold the data under its digest and nothing under any other.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import linecache
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import cargohold
from cargohold import ContentError, FailedPreconditionError, Store, UnavailableError
from cargohold.testing.helpers import digest_of, random_bytes, read_all

_SRC = Path(cargohold.__file__).parent
_TRACED = (
    {str(p) for p in _SRC.glob("*.py")}
    | {str(p) for p in (_SRC / "ingest").glob("*.py")}
    | {str(_SRC / "drivers" / "local.py")}
)


@functools.cache
def _is_with(filename: str, lineno: int) -> bool:
    """A ``with`` line: its line event also fires after the body, where an exception skips
    ``__exit__`` (CPython, bpo-29988), leaking a lock: not a spot this test can inject at."""
    return linecache.getline(filename, lineno).lstrip().startswith("with ")


class _Interrupt:
    """Raise ``exc`` at the ``at``-th line event in cargohold's code (0: only count)."""

    def __init__(self, at: int, exc: type[BaseException]) -> None:
        self.at = at
        self.exc = exc
        self.count = 0
        self.fired = False

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename in _TRACED:
            return self._local
        return None

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line" and not _is_with(frame.f_code.co_filename, frame.f_lineno):
            self.count += 1
            if self.count == self.at:
                self.fired = True
                raise self.exc(f"injected at line event {self.at}")
        return self._local

    def __enter__(self) -> _Interrupt:
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(None)


def _open(url: str) -> Store:
    store = cargohold.open_store(url, part_size=64 * 1024, concurrency=2, lease_timeout=30)
    ticks = itertools.count(step=100.0)
    store.clock = lambda: float(next(ticks))  # a checkpoint after every write
    return store


CHUNKS = (50_000, 140_000, 1, 70_000, 3_000)


def _run(store: Store, ref: str, data: bytes) -> None:
    """What a user's re-run does: resume at the offset, write the rest, commit (no digest)."""
    with store.writer(ref) as writer:
        pos = writer.status().offset
        for size in itertools.cycle(CHUNKS):
            if pos >= len(data):
                break
            writer.write(data[pos : pos + size])
            pos += size
        writer.commit(len(data), "")


def _rerun(store: Store, ref: str, data: bytes) -> None:
    """Re-run until it commits (a restart or a lock left by the interruption may cost tries)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            _run(store, ref, data)
            return
        except cargohold.AlreadyExistsError:
            return
        except (FailedPreconditionError, UnavailableError):
            if time.monotonic() > deadline:
                raise
            gc.collect()  # a writer the interruption orphaned gives its ref up once collected
            time.sleep(0.05)


def _check(store: Store, data: bytes) -> None:
    infos = list(store.walk())
    for info in infos:
        assert digest_of(read_all(store, info.digest)) == info.digest, "a blob under a wrong key"
    assert [i.digest for i in infos] == [digest_of(data)]
    assert read_all(store, digest_of(data)) == data


def _positions(url_factory: Callable[[], str], data: bytes, budget: int) -> Iterator[int]:
    store = _open(url_factory())
    try:
        with _Interrupt(0, KeyboardInterrupt) as counter:
            _run(store, "count", data)
    finally:
        store.close()
    total = counter.count
    step = max(1, total // budget)
    yield from range(1, total + 1, step)


@pytest.mark.slow
@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, RuntimeError])
@pytest.mark.parametrize("kind", ["memory", "file"])
def test_an_interruption_anywhere_never_stores_a_wrong_digest(
    kind: str, exc: type[BaseException], tmp_path: Path
) -> None:
    data = random_bytes(5 * 64 * 1024 + 12_345, seed=77)
    serial = itertools.count()

    def fresh_url() -> str:
        n = next(serial)
        if kind == "memory":
            return f"memory://interrupt-{exc.__name__}-{n}/store"
        return f"file://{tmp_path / str(n)}"

    budget = (200 if kind == "memory" else 80) // (1 if exc is KeyboardInterrupt else 2)
    fired = 0
    for at in _positions(fresh_url, data, budget):
        store = _open(fresh_url())
        try:
            with _Interrupt(at, exc) as interrupt, contextlib.suppress(exc, ContentError):
                _run(store, "ref", data)
            fired += interrupt.fired
            _rerun(store, "ref", data)
            _check(store, data)
            assert store.list_statuses() == [], f"an ingestion left behind (event {at})"
        finally:
            store.close()
    assert fired >= budget // 2
