"""The serve process: socket file handling, mode 0660, graceful SIGTERM leaving writes resumable."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import cargohold
from cargohold.errors import InvalidArgumentError, UnavailableError
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.gen import content_pb2_grpc as pb_grpc
from cargohold.plugin.server import ContentServer, parse_address

pytestmark = pytest.mark.multiprocess


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="chs-", dir="/tmp") as d:  # short: sun_path limit
        yield Path(d)


def test_parse_address() -> None:
    assert parse_address("unix:///run/x.sock").target == "/run/x.sock"
    assert parse_address("tcp://127.0.0.1:5000").kind == "tcp"
    for bad in ("tcp://0.0.0.0:5000", "unix://relative", "http://x"):
        with pytest.raises(InvalidArgumentError):
            parse_address(bad)


def test_socket_mode_and_stale_socket(sock_dir: Path, memory_store_url: str) -> None:
    path = sock_dir / "content.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a socket file nobody listens on
    store = cargohold.open_store(memory_store_url)
    server = ContentServer(store, "n1", parse_address(f"unix://{path}"))
    server.start()
    try:
        assert stat.S_IMODE(path.lstat().st_mode) == 0o660
        with pytest.raises(UnavailableError):  # a live socket is never replaced
            ContentServer(store, "n2", parse_address(f"unix://{path}")).start()
    finally:
        server.stop(1)
    assert not path.exists()
    path.write_text("not a socket")
    with pytest.raises(InvalidArgumentError):
        ContentServer(store, "n1", parse_address(f"unix://{path}")).start()
    assert path.read_text() == "not a socket"


def test_sigterm_keeps_inflight_write_resumable(sock_dir: Path, file_store_url: str) -> None:
    path = sock_dir / "content.sock"
    argv = [sys.executable, "-m", "cargohold.plugin", "--address", f"unix://{path}"]
    argv += ["--store", file_store_url, "--node-id", "n1", "--grace", "1"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        channel = grpc.insecure_channel(f"unix://{path}")
        stub = pb_grpc.ContentStub(channel)  # type: ignore[no-untyped-call]
        opened = threading_stream(stub)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        opened.cancel()
        channel.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not path.exists()
    store = cargohold.open_store(file_store_url)
    try:
        with store.writer("n1/r/1/x") as writer:  # the node-scoped ref, resumed here
            assert writer.status().offset == 6
    finally:
        store.close()


def threading_stream(stub: pb_grpc.ContentStub) -> grpc.Future:
    """Open a Write stream, write 6 bytes, and leave it open (no commit, no close)."""
    import queue

    outbox: queue.Queue[pb.WriteContentRequest | None] = queue.Queue()

    def requests() -> Iterator[pb.WriteContentRequest]:
        while (item := outbox.get()) is not None:
            yield item

    call = stub.Write(requests())
    outbox.put(pb.WriteContentRequest(action=pb.WRITE, ref="r/1/x", offset=0, data=b"abcdef"))
    assert next(call).offset == 6
    return call  # type: ignore[no-any-return]
