"""Cases that cross OS processes: resume elsewhere, locks, racing commits, crashes, takeover."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cargohold import (
    AlreadyExistsError,
    Descriptor,
    FailedPreconditionError,
    Store,
    UnavailableError,
)

from ... import locks
from ..helpers import CHILD_MODULE, child_env, digest_of, open_small, random_bytes

pytestmark = pytest.mark.multiprocess
LEASE = 3.0


class Child:
    """A store client in another process."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", CHILD_MODULE, url, json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(),
            text=True,
        )

    def send(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"child died (exit {self.proc.poll()})"
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ok(self, op: str, **args: Any) -> Any:
        reply = self.send(op, **args)
        assert "ok" in reply, reply
        return reply["ok"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def children(cargohold_shared_store_url: str) -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for child in made:
        with_signal = child.proc.poll() is None
        if with_signal:
            os.kill(child.proc.pid, signal.SIGCONT)
        child.stop()


@pytest.fixture
def mstore(cargohold_shared_store_url: str) -> Iterator[Store]:
    opened = open_small(cargohold_shared_store_url, lease_timeout=LEASE)
    yield opened
    opened.close()


def _spawn(children: list[Child], url: str, store: Store) -> Child:
    child = Child(url, {"part_size": store.part_size, "lease_timeout": LEASE})
    children.append(child)
    return child


def _data_file(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return str(path)


def _kill_mid_write(
    child: Child, tmp_path: Path, ref: str, data: bytes, *, end: int, **pace: Any
) -> None:
    """Have ``child`` open ``ref`` for ``data`` and write ``data[:end]`` (``pace``: the
    child's ``step`` and ``pause``), then SIGKILL it."""
    child.ok("open", ref=ref, digest=digest_of(data), size=len(data))
    child.ok("write", path=_data_file(tmp_path, data), start=0, end=end, **pace)
    child.stop()


def _resume_after_lease(store: Store, ref: str, data: bytes) -> int:
    """Once a killed writer's lease is over, resume ``ref`` here, commit and read it back.

    Returns the offset the resumed writer started at; what was durable there is checked.
    """
    time.sleep(LEASE + 0.5)
    with store.writer(ref) as writer:
        offset = writer.status().offset
        assert writer.digest() == digest_of(data[:offset])
        writer.write(data[offset:])
        writer.commit(len(data), digest_of(data))
    with store.reader_at(digest_of(data)) as reader:
        assert reader.read_at(0, len(data)) == data
    return offset


def test_resume_in_another_process(
    mstore: Store, cargohold_shared_store_url: str, children: list[Child], tmp_path: Path
) -> None:
    data = random_bytes(3 * mstore.part_size + 77, seed=50)
    path = _data_file(tmp_path, data)
    cut = mstore.part_size + 1234
    writer = mstore.writer("cross", Descriptor(digest=digest_of(data), size=len(data)))
    writer.write(data[:cut])
    status, digest = writer.status(), writer.digest()
    writer.close()
    child = _spawn(children, cargohold_shared_store_url, mstore)
    assert child.ok("open", ref="cross") == cut
    offset, total, expected, started, updated = child.ok("status")
    assert (offset, total, expected) == (cut, len(data), digest_of(data))
    assert (started, updated) == (status.started_at.isoformat(), status.updated_at.isoformat())
    assert child.ok("digest") == digest
    child.ok("write", path=path, start=cut, end=len(data))
    child.ok("close")
    with mstore.writer("cross") as again:
        assert again.status().offset == len(data)
        again.commit(len(data), digest_of(data))
    with mstore.reader_at(digest_of(data)) as reader:
        assert reader.read_at(0, len(data)) == data


@pytest.mark.cargohold_leaves("ingestion")
def test_lock_held_by_another_process(
    mstore: Store, cargohold_shared_store_url: str, children: list[Child]
) -> None:
    child = _spawn(children, cargohold_shared_store_url, mstore)
    child.ok("open", ref="held")
    with pytest.raises(UnavailableError):
        mstore.writer("held")
    child.ok("close")
    mstore.writer("held").close()


def test_dead_holder_on_this_machine_stops_holding_at_once(
    mstore: Store, cargohold_shared_store_url: str, children: list[Child]
) -> None:
    """A holder known to be gone (same machine, its process no longer exists) is not waited
    for: re-running a killed command gets its ref back at once."""
    if not locks.machine_id():
        pytest.skip("this host has no boot id, so a lease's holder cannot be told gone")
    child = _spawn(children, cargohold_shared_store_url, mstore)
    child.ok("open", ref="orphan")
    child.stop()  # SIGKILL, reaped
    mstore.writer("orphan").close()
    mstore.abort("orphan")


def test_dead_holder_elsewhere_stops_holding_after_the_lease_timeout(
    mstore: Store, cargohold_shared_store_url: str, children: list[Child]
) -> None:
    """A holder on another machine cannot be checked: its lease holds until it expires."""
    child = _spawn(children, cargohold_shared_store_url, mstore)
    child.ok("open", ref="orphan")
    child.stop()  # SIGKILL
    key = mstore.layout.lock_key("orphan")
    holder = json.loads(mstore.driver.get(key))
    holder["machine"] = "another-machine"  # as a lease written on another host reads
    mstore.driver.put(key, json.dumps(holder).encode())
    with pytest.raises(UnavailableError):
        mstore.writer("orphan")
    deadline = time.monotonic() + LEASE * 4
    while True:
        try:
            mstore.writer("orphan").close()
            break
        except UnavailableError:
            assert time.monotonic() < deadline, "the lease of a dead writer never expired"
            time.sleep(0.2)
    mstore.abort("orphan")


def test_crash_mid_upload_resumes_at_last_durable_offset(
    mstore: Store, cargohold_shared_store_url: str, children: list[Child], tmp_path: Path
) -> None:
    part = mstore.part_size
    data = random_bytes(8 * part + 5, seed=51)
    # Slow writes, so that checkpoints (every lease_timeout / 3) happen along the way.
    child = _spawn(children, cargohold_shared_store_url, mstore)
    _kill_mid_write(child, tmp_path, "crash", data, end=6 * part, step=part // 2, pause=LEASE / 8)
    offset = _resume_after_lease(mstore, "crash", data)
    assert 0 < offset <= 6 * part


def test_taken_over_writer_fails_and_close_is_a_no_op(
    mstore: Store, cargohold_shared_store_url: str, children: list[Child], tmp_path: Path
) -> None:
    data = random_bytes(2 * mstore.part_size, seed=52)
    path = _data_file(tmp_path, data)
    child = _spawn(children, cargohold_shared_store_url, mstore)
    child.ok("open", ref="stalled")
    child.ok("write", path=path, start=0, end=10)
    os.kill(child.proc.pid, signal.SIGSTOP)
    time.sleep(LEASE + 1)
    with mstore.writer("stalled") as writer:
        assert writer.status().offset == 0  # nothing the stalled writer did was made durable
        writer.write(data)
        os.kill(child.proc.pid, signal.SIGCONT)
        reply = child.send("commit")
        assert reply.get("error") == FailedPreconditionError.__name__, reply
        writer.commit(len(data), digest_of(data))
    with mstore.reader_at(digest_of(data)) as reader:
        assert reader.read_at(0, len(data)) == data


@pytest.mark.slow
def test_racing_commits_of_one_digest_exactly_one_wins(
    mstore: Store, cargohold_shared_store_url: str, children: list[Child], tmp_path: Path
) -> None:
    data = random_bytes(2 * mstore.part_size + 99, seed=53)
    path = _data_file(tmp_path, data)
    racers = [_spawn(children, cargohold_shared_store_url, mstore) for _ in range(4)]
    for index, racer in enumerate(racers):
        racer.ok("open", ref=f"racer-{index}")
        racer.ok("write", path=path, start=0, end=len(data))
    start = time.time() + 1.0
    for racer in racers:
        assert racer.proc.stdin is not None
        racer.proc.stdin.write(json.dumps({"op": "wait_until", "t": start}) + "\n")
        racer.proc.stdin.write(
            json.dumps({"op": "commit", "size": len(data), "expected": digest_of(data)}) + "\n"
        )
        racer.proc.stdin.flush()
    outcomes = []
    for racer in racers:
        assert racer.proc.stdout is not None
        racer.proc.stdout.readline()  # wait_until
        outcomes.append(json.loads(racer.proc.stdout.readline()))
    wins = [o for o in outcomes if "ok" in o]
    losses = [o for o in outcomes if o.get("error") == AlreadyExistsError.__name__]
    assert len(wins) == 1, outcomes
    assert len(losses) == len(racers) - 1, outcomes
    with mstore.reader_at(digest_of(data)) as reader:
        assert reader.read_at(0, len(data)) == data
    assert mstore.list_statuses() == []


def test_writer_killed_before_its_first_checkpoint_leaves_no_session(
    mstore: Store, cargohold_shared_store_url: str, children: list[Child], tmp_path: Path
) -> None:
    part = mstore.part_size
    data = random_bytes(3 * part + 9, seed=54)
    child = _spawn(children, cargohold_shared_store_url, mstore)
    _kill_mid_write(child, tmp_path, "early", data, end=2 * part + 1)
    _resume_after_lease(mstore, "early", data)
    if mstore.driver.limits.abort_removes_parts:
        assert list(mstore.driver.list_uploads(mstore.prefix)) == []
