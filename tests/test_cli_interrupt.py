"""Ctrl-C and SIGKILL at random moments of ``cargohold ingest REF FILE``, each followed by the
same command again: the stored blob always hashes to its key and equals the file.

Two workers per store kind (file:// and S3 on the moto server) run at once, with small parts
so that every run crosses part uploads and checkpoints, and a short lease so that a re-run
after SIGKILL waits under a second for the dead writer's lock. Each worker's choices (signal,
moment, bytes) come from its own seeded generator; the test runs until
``RUNS`` interrupted runs are done or ``BUDGET`` seconds have passed, and fails with fewer
than ``RUNS``. ``CARGOHOLD_INTERRUPT_RUNS``, ``CARGOHOLD_INTERRUPT_BUDGET`` and
``CARGOHOLD_INTERRUPT_SEED`` change them.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import cargohold
from cargohold import Store
from tests.conftest import STORE_KINDS

RUNS = int(os.environ.get("CARGOHOLD_INTERRUPT_RUNS", "100"))
BUDGET = float(os.environ.get("CARGOHOLD_INTERRUPT_BUDGET", "120"))
SEED = int(os.environ.get("CARGOHOLD_INTERRUPT_SEED", "20261202"))
KINDS = [k for k in ("file", "s3") if k in STORE_KINDS]
MiB = 1024 * 1024
# kind -> (file size, store options): several parts per file, one part upload at a time (so
# that writes also wait for uploads), no fsync on file:// (the test is about the bytes, and the
# time saved goes into more runs)
SIZES: dict[str, tuple[int, dict[str, object]]] = {
    "file": (16 * MiB + 17, {"part_size": MiB, "concurrency": 1, "fsync": 0}),
    "s3": (10 * MiB + 17, {"part_size": 5 * MiB, "concurrency": 1}),
}
LEASE = 0.6
WORKERS_PER_KIND = 2
EARLY_SHARE = 0.2
"""The share of runs interrupted at any moment of the process; the others are interrupted
after the writer opened (process start-up takes longer than the writing on small files)."""
RERUN_DEADLINE = 30.0

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]


def with_options(url: str, **options: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


@dataclass
class Target:
    """One store kind under test: the CLI's URL, a library handle, and timing."""

    kind: str
    url: str
    store: Store
    size: int
    duration: float = 1.0
    startup: float = 0.0
    runs: dict[str, int] = field(default_factory=dict)
    """Runs by signal and the interrupted command's exit status (130: stopped mid-ingest)."""


def cli(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CARGOHOLD_STORE": url}
    return subprocess.Popen(
        [sys.executable, "-m", "cargohold", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def rerun_until_done(url: str, ref: str, source: Path) -> tuple[str, str]:
    """Run the same ingest again; while a killed writer's lease is still held, wait and retry."""
    deadline = time.monotonic() + RERUN_DEADLINE
    while True:
        proc = cli(url, "ingest", ref, str(source))
        out, err = proc.communicate(timeout=RERUN_DEADLINE)
        if proc.returncode == 0:
            return out.decode().strip(), err.decode()
        text = err.decode()
        if "unavailable" in text and time.monotonic() < deadline:
            time.sleep(LEASE / 3)
            continue
        raise AssertionError(f"re-run of ingest {ref} failed ({proc.returncode}): {text}")


def stored_digest(store: Store, digest: str) -> tuple[str, bytes]:
    with store.reader_at(digest) as reader:
        data = reader.read_at(0, reader.size)
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


@pytest.fixture
def targets(request: pytest.FixtureRequest) -> Iterator[list[Target]]:
    made: list[Target] = []
    for kind in KINDS:
        base: str = request.getfixturevalue(STORE_KINDS[kind])
        size, options = SIZES[kind]
        url = with_options(base, lease_timeout=LEASE, **options)
        made.append(Target(kind, url, cargohold.open_store(url), size))
    try:
        yield made
    finally:
        for target in made:
            target.store.close()


def calibrate(target: Target, tmp_path: Path, rng: random.Random) -> None:
    """Time a command that only opens the store, and one uninterrupted ingest: interrupts land
    between the moment an ingest could start writing and the moment it should be done."""
    began = time.monotonic()
    proc = cli(target.url, "active")
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    target.startup = time.monotonic() - began
    source = tmp_path / f"calibrate-{target.kind}"
    source.write_bytes(rng.randbytes(target.size))
    began = time.monotonic()
    proc = cli(target.url, "ingest", "calibrate", str(source))
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    target.duration = time.monotonic() - began


class Runs:
    """The shared count of interrupted runs, and when to stop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken = 0
        self.done = 0
        self.started = time.monotonic()
        self.errors: list[BaseException] = []
        self.complaints: list[str] = []
        """Commands that ended badly after Ctrl-C (the bytes are checked all the same)."""

    def take(self) -> int | None:
        """A run number, or None when enough runs are taken, time is up or one failed."""
        with self._lock:
            over = time.monotonic() - self.started >= BUDGET
            if self._taken >= RUNS or over or self.errors:
                return None
            self._taken += 1
            return self._taken - 1

    def finished(self) -> None:
        with self._lock:
            self.done += 1


def wait_for_ingestion(store: Store, ref: str, proc: subprocess.Popen[bytes]) -> None:
    """Until the command has opened its writer (or ended, or 10 s passed)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            store.status(ref)
            return
        except cargohold.NotFoundError:
            time.sleep(0.01)


def sigint_problem(how: str, code: int | None, err: str, *, starting: bool = False) -> str:
    """What is wrong with how a command ended after Ctrl-C ("" if nothing): 0 (it had
    finished), 130 with the resume hint and no traceback, or the signal's own status while
    Python was still starting up (``starting``: before its handler for SIGINT existed, the
    default action ends the process silently)."""
    if how != "SIGINT":
        return ""
    if starting and code == -signal.SIGINT and not err.strip():
        return ""
    if code == 0 or (code == 130 and "Traceback" not in err and "resume" in err):
        return ""
    if "KeyboardInterrupt" in err and not re.search(r'cli\.py", line \d+, in (main|run)', err):
        return ""  # stopped while Python started up and imported, before the command ran
    return f"Ctrl-C ended the command with {code}: {err.strip()[-300:]}"


def one_run(
    target: Target, number: int, rng: random.Random, tmp_path: Path, complaints: list[str]
) -> str:
    """Ingest a fresh file, interrupt it at a random moment, run the same command again and
    check what is stored; return the signal used and the interrupted command's exit status."""
    how = rng.choice(["SIGINT", "SIGKILL"])
    data = rng.randbytes(target.size)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    source = tmp_path / f"run-{number}.bin"
    source.write_bytes(data)
    ref = f"run-{number}"
    early = rng.random() < EARLY_SHARE
    proc = cli(target.url, "ingest", ref, str(source))
    starting = False
    if early:  # any moment, from the start of the process
        delay = rng.uniform(0.0, target.duration)
        starting = delay < target.startup
        time.sleep(delay)
    else:  # a moment after the writer opened, while it writes, checkpoints or commits
        began = time.monotonic()
        wait_for_ingestion(target.store, ref, proc)
        left = target.duration - target.startup - (time.monotonic() - began)
        time.sleep(rng.uniform(0.0, max(left, 0.05)))
    proc.send_signal(signal.SIGINT if how == "SIGINT" else signal.SIGKILL)
    try:
        _out, first_err = proc.communicate(timeout=RERUN_DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"{ref} on {target.kind} did not stop after {how}") from None
    problem = sigint_problem(how, proc.returncode, first_err.decode(), starting=starting)
    if problem:
        complaints.append(f"run {number} ({target.kind}): {problem}")
    if how == "SIGKILL":
        time.sleep(LEASE)  # the dead writer's lock cannot expire sooner
    printed, err = rerun_until_done(target.url, ref, source)
    context = f"run {number} ({target.kind}, {how}); stderr: {err}"
    assert printed == digest, context
    actual, stored = stored_digest(target.store, digest)
    assert actual == digest and stored == data, context
    source.unlink()
    return f"{how}:{proc.returncode}"


def worker(target: Target, seed: int, runs: Runs, tmp_path: Path) -> None:
    rng = random.Random(seed)
    try:
        while (number := runs.take()) is not None:
            outcome = one_run(target, number, rng, tmp_path, runs.complaints)
            with runs._lock:
                target.runs[outcome] = target.runs.get(outcome, 0) + 1
            runs.finished()
    except BaseException as exc:
        runs.errors.append(exc)


def test_interrupted_ingest_then_rerun_stores_the_right_bytes(
    targets: list[Target], tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    for target in targets:
        calibrate(target, tmp_path, rng)
    runs = Runs()
    threads = [
        threading.Thread(target=worker, args=(target, SEED + n, runs, tmp_path), daemon=True)
        for n, target in enumerate(targets * WORKERS_PER_KIND)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BUDGET + 4 * RERUN_DEADLINE)
    elapsed = time.monotonic() - runs.started
    summary = ", ".join(
        f"{t.kind}: {t.runs} ({t.startup:.2f}s to start, {t.duration:.2f}s each)" for t in targets
    )
    print(f"\n{runs.done} interrupted runs in {elapsed:.0f}s ({summary})")
    if runs.errors:
        raise runs.errors[0]
    assert not any(thread.is_alive() for thread in threads), "a worker did not finish"
    for target in targets:
        for info in target.store.walk():
            assert stored_digest(target.store, info.digest)[0] == info.digest, target.kind
    problems = list(runs.complaints)
    if runs.done < RUNS:
        problems.insert(0, f"only {runs.done} of {RUNS} runs in {BUDGET:.0f}s ({summary})")
    assert not problems, "\n".join(problems)
