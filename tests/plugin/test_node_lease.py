"""One ``serve`` process per node id: the node's lease (``plugin/nodelease.py``).

Every test runs real ``cargohold serve`` processes on one store: file://, or S3 (moto server)
behind a TCP proxy where the store must be unreachable at start.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cargohold
from cargohold.errors import NotFoundError
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.nodelease import node_key
from tests.emulators.moto import S3Endpoint

from .serveproc import ServeProcess, serve_process
from .stall_proxy import StallingProxy

pytestmark = pytest.mark.multiprocess


def _answers(served: ServeProcess) -> bool:
    """Whether the server answers an RPC (an empty List)."""
    with served.channel() as channel:
        replies = list(served.stub(channel).List(pb.ListContentRequest(), timeout=10))
    return replies == [] or all(r.info for r in replies)


def _lease_exists(url: str, node: str) -> bool:
    with cargohold.open_store(url) as store:
        try:
            store.driver.head(node_key(store, node))
        except NotFoundError:
            return False
        return True


def _serve_once(
    url: str, node: str, *extra: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``serve`` that is expected to exit by itself (refused to start)."""
    argv = [sys.executable, "-m", "cargohold", "serve", "--address", "unix:///nonexistent/x.sock"]
    argv += ["--store", url, "--node-id", node, *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def test_a_second_process_with_the_same_node_id_is_refused(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    with serve_process("node-first", ["--store", url, "--node-id", "n1"]) as first:
        started = time.monotonic()
        second = _serve_once(url, "n1", "--node-wait", "1")
        assert time.monotonic() - started < 30
        assert second.returncode == 1, second.stderr
        lines = [line for line in second.stderr.splitlines() if not line.startswith("{")]
        assert len(lines) == 1, second.stderr
        assert lines[0].startswith("cargohold: unavailable: node id 'n1' is in use by another")
        assert f"pid {first.proc.pid} on host" in lines[0]
        assert "--node-id" in lines[0]  # the hint
        # The first one never noticed: it still serves, and still holds the node id.
        assert _answers(first)
        assert _lease_exists(url, "n1")
        code, _ = first.signal_and_wait(signal.SIGTERM, 30)
        assert code == 0
    assert not _lease_exists(url, "n1")  # let go at a clean stop


def test_different_node_ids_share_a_store(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    with (
        serve_process("node-a", ["--store", url, "--node-id", "node-a"]) as a,
        serve_process("node-b", ["--store", url, "--node-id", "node-b"]) as b,
    ):
        assert _answers(a) and _answers(b)
        assert _lease_exists(url, "node-a") and _lease_exists(url, "node-b")


def test_a_successor_waits_for_the_holder_to_stop(tmp_path: Path) -> None:
    """A replacement started while the old process still serves starts once that one stops."""
    url = f"file://{tmp_path}/store"
    with serve_process("node-old", ["--store", url, "--node-id", "n1"]) as old:
        args = ["--store", url, "--node-id", "n1", "--node-wait", "60"]
        with serve_process("node-new", args, wait_ready=False) as new:
            new.wait_for_log(lambda e: e.get("msg", "").startswith("node id in use"), 30)
            assert new.proc.poll() is None
            assert not any(line.startswith("ready ") for line in new.lines)
            code, _ = old.signal_and_wait(signal.SIGTERM, 30)
            assert code == 0
            new.wait_ready(30)
            assert _answers(new)


def test_a_killed_holder_is_taken_over_at_once(tmp_path: Path) -> None:
    """A holder on this machine whose process is gone does not hold the node id for the
    rest of its lease (60 s here)."""
    url = f"file://{tmp_path}/store"
    with serve_process("node-killed", ["--store", url, "--node-id", "n1"]) as killed:
        killed.kill()  # SIGKILL: no clean-up at all, the lease stays behind
    assert _lease_exists(url, "n1")
    started = time.monotonic()
    with serve_process("node-after-kill", ["--store", url, "--node-id", "n1"]) as after:
        assert time.monotonic() - started < 30
        assert _answers(after)


def test_a_waiting_process_stops_at_once_on_sigterm(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    with serve_process("node-holder", ["--store", url, "--node-id", "n1"]):
        args = ["--store", url, "--node-id", "n1", "--node-wait", "120"]
        with serve_process("node-waiter", args, wait_ready=False) as waiter:
            waiter.wait_for_log(lambda e: e.get("msg", "").startswith("node id in use"), 30)
            code, took = waiter.signal_and_wait(signal.SIGTERM, 30)
            assert code == 0
            assert took < 10
            assert not any(line.startswith("ready ") for line in waiter.lines)


def test_a_lost_node_lease_stops_the_process(tmp_path: Path) -> None:
    """Someone removed the lease (or took it over after this process stalled): another
    process may be acting as this node, so this one stops, with exit code 1."""
    url = f"file://{tmp_path}/store?lease_timeout=1.5"  # renewed every 0.5 s
    with serve_process("node-lost", ["--store", url, "--node-id", "n1"]) as served:
        assert _answers(served)
        (tmp_path / "store" / "nodes" / "n1").unlink()
        code = served.proc.wait(30)
        served._reader.join(5)
        assert code == 1
        messages = [e.get("msg", "") for e in served.logs()]
        assert any(m.startswith("this node's lease was taken over or removed") for m in messages)
        assert "stopping: this process no longer holds its node id" in messages


def test_serve_starts_while_the_store_is_unreachable_and_takes_the_lease_later(
    moto_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    """As before the node lease: a store that does not answer yet does not keep serve from
    starting (health says NOT_SERVING); the lease is taken once the store answers."""
    host, _, port = moto_endpoint.url.removeprefix("http://").rpartition(":")
    with StallingProxy((host, int(port))) as proxy:
        proxy.set_mode("refuse")
        url = moto_endpoint.store_url(s3_bucket, endpoint_url=proxy.url)
        direct = moto_endpoint.store_url(s3_bucket)
        with serve_process("node-unreachable", ["--store", url, "--node-id", "n1"]) as served:
            served.wait_for_log(lambda e: e.get("msg", "").startswith("serving before"), 30)
            assert not _lease_exists(direct, "n1")
            proxy.set_mode("forward")
            deadline = time.monotonic() + 30
            while not _lease_exists(direct, "n1"):
                assert time.monotonic() < deadline, "the lease was not taken once S3 answered"
                time.sleep(0.2)
            assert _answers(served)
