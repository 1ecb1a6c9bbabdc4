"""Run a real ``cargohold serve`` process for a test, and talk to it.

Its stderr (JSON log lines and the ``ready`` line) is copied to ``test-logs/serve/<name>.log``
and kept in memory, so a test can wait for a log message and read its fields.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc

from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.gen import content_pb2_grpc as pb_grpc

__all__ = ["ServeProcess", "WriteStream", "serve_process"]

LOG_DIR = Path(__file__).resolve().parents[2] / "test-logs" / "serve"


class ServeProcess:
    """A running ``cargohold serve`` with a unix socket in a short temporary directory."""

    def __init__(self, proc: subprocess.Popen[bytes], socket_path: Path, log_path: Path) -> None:
        self.proc = proc
        self.socket_path = socket_path
        self.log_path = log_path
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with open(self.log_path, "ab") as log:
            for raw in self.proc.stderr:
                log.write(raw)
                log.flush()
                with self._lock:
                    self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log entries so far."""
        with self._lock:
            lines = list(self.lines)
        entries = []
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def wait_for_log(
        self, match: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """The first log entry ``match`` accepts, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.logs():
                if match(entry):
                    return entry
            if time.monotonic() > deadline:
                raise AssertionError(f"no such log line within {timeout}s; see {self.log_path}")
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if any(line.startswith("ready ") for line in self.lines):
                    return
            code = self.proc.poll()
            if code is not None:
                self._reader.join(5)
                raise AssertionError(f"serve exited with {code}: {self.lines[-20:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"serve not ready within {timeout}s; see {self.log_path}")
            time.sleep(0.05)

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(
            f"unix://{self.socket_path}", options=[("grpc.max_receive_message_length", 64 << 20)]
        )

    def stub(self, channel: grpc.Channel) -> pb_grpc.ContentStub:
        return pb_grpc.ContentStub(channel)  # type: ignore[no-untyped-call]

    def signal_and_wait(self, signum: int, timeout: float) -> tuple[int, float]:
        """Send ``signum``; return (exit code, seconds until exit). Fails past ``timeout``."""
        started = time.monotonic()
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=timeout)
        elapsed = time.monotonic() - started
        self._reader.join(5)
        return code, elapsed

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@contextlib.contextmanager
def serve_process(
    name: str,
    args: Sequence[str],
    *,
    global_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
) -> Iterator[ServeProcess]:
    """``python -m cargohold [global_args] serve --address unix://... [args]`` until the end."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}.log"
    log_path.write_bytes(b"")
    with tempfile.TemporaryDirectory(prefix="chs-", dir="/tmp") as tmp:  # short: sun_path
        socket_path = Path(tmp) / "content.sock"
        argv = [sys.executable, "-m", "cargohold", *global_args, "serve"]
        argv += ["--address", f"unix://{socket_path}", *args]
        proc = subprocess.Popen(
            argv,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        served = ServeProcess(proc, socket_path, log_path)
        try:
            if wait_ready:
                served.wait_ready()
            yield served
        finally:
            served.kill()


class WriteStream:
    """A Write call fed from a queue; replies are collected on a thread of its own."""

    def __init__(self, stub: pb_grpc.ContentStub, timeout: float = 120.0) -> None:
        self._outbox: queue.Queue[pb.WriteContentRequest | None] = queue.Queue()
        self.replies: queue.Queue[pb.WriteContentResponse | BaseException] = queue.Queue()
        self.call = stub.Write(self._requests(), timeout=timeout)
        self.done = threading.Event()
        threading.Thread(target=self._collect, daemon=True).start()

    def _requests(self) -> Iterator[pb.WriteContentRequest]:
        while (item := self._outbox.get()) is not None:
            yield item

    def _collect(self) -> None:
        try:
            for reply in self.call:
                self.replies.put(reply)
        except BaseException as exc:
            self.replies.put(exc)
        finally:
            self.done.set()

    def send(self, request: pb.WriteContentRequest) -> None:
        self._outbox.put(request)

    def reply(self, timeout: float = 60.0) -> pb.WriteContentResponse:
        """The next reply; raises the call's error if it ended with one."""
        item = self.replies.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    def request(
        self, request: pb.WriteContentRequest, timeout: float = 60.0
    ) -> pb.WriteContentResponse:
        """Send one request and wait for its reply."""
        self.send(request)
        return self.reply(timeout)

    def close(self) -> None:
        """Half-close: the server sees the end of the stream (the writer closes, not commits)."""
        self._outbox.put(None)

    def cancel(self) -> None:
        self.call.cancel()
