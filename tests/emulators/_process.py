"""Helpers for starting a server process on loopback and stopping exactly that process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_ready(url: str) -> Callable[[], bool]:
    """A readiness probe: any HTTP answer (even an error status) means the server is up."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False

    return probe


def unix_ready(path: Path) -> Callable[[], bool]:
    """A readiness probe: something accepts connections on the Unix socket at ``path``."""

    def probe() -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            try:
                sock.connect(str(path))
            except OSError:
                return False
            return True

    return probe


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    ready: Callable[[], bool],
    *,
    name: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    cwd: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv``, wait until ``ready()``; on exit stop that process (by PID) and its group."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode} before it was ready:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not become ready in {timeout}s:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
