"""Real containerd daemons wired to ``cargohold serve`` through a proxy content plugin.

``containerd_host`` is a factory fixture: each call starts one ``cargohold serve`` process (own
node id, unix socket) for a store URL and one ``containerd`` whose builtin content store is
disabled and whose ``[proxy_plugins.cargohold]`` points at that socket; root and state live in a
short temp dir (unix socket paths are limited to 108 bytes). Everything started is stopped by
PID when the test ends. ``ctr`` is always run under a timeout: it retries UNAVAILABLE forever.

containerd comes from ``.ci/install/containerd.sh`` (Debian's package). If it is missing the
tests fail; they never skip. ``CARGOHOLD_CONTAINERD`` / ``CARGOHOLD_CTR`` override the binaries.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.emulators._process import running, unix_ready

REPO = Path(__file__).resolve().parents[2]
LOG_DIR = REPO / "test-logs" / "containerd"

DISABLED_PLUGINS = [
    "io.containerd.content.v1.content",
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.overlayfs",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
]


def binary(name: str, env_var: str) -> str:
    """Path of a containerd binary; fails the test (never skips) when it is missing."""
    found = os.environ.get(env_var) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: run .ci/install/containerd.sh (or set {env_var})")
    return found


def containerd_config(root: Path, state: Path, address: Path, content_socket: Path | None) -> str:
    """A containerd 1.6/1.7 config (version 2) for one test daemon.

    With ``content_socket`` the builtin content store is replaced by the cargohold proxy plugin;
    without it the builtin store is kept (the benchmark's baseline).
    """
    disabled = [p for p in DISABLED_PLUGINS if content_socket or "content.v1" not in p]
    lines = [
        "version = 2",
        f'root = "{root}"',
        f'state = "{state}"',
        "disabled_plugins = [" + ", ".join(f'"{p}"' for p in disabled) + "]",
        "",
        "[grpc]",
        f'  address = "{address}"',
        "",
        '[plugins."io.containerd.gc.v1.scheduler"]',
        # Collect right after each deletion so tests see GC's effect without waiting.
        "  deletion_threshold = 1",
        '  schedule_delay = "0s"',
        '  startup_delay = "100ms"',
    ]
    if content_socket is not None:
        lines += [
            "",
            "[proxy_plugins]",
            "  [proxy_plugins.cargohold]",
            '    type = "content"',
            f'    address = "{content_socket}"',
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Host:
    """One containerd with its cargohold serve process (or the builtin store)."""

    name: str
    dir: Path
    address: Path
    content_socket: Path | None
    ctr_bin: str
    serve_log: Path | None = None
    namespace: str = "cargohold-test"

    def ctr(
        self,
        *args: str,
        timeout: float = 120,
        check: bool = True,
        input: bytes | None = None,
        namespace: str | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``ctr -a SOCK -n NS args...`` under a timeout."""
        argv = ["timeout", "-k", "5", str(int(timeout)), self.ctr_bin]
        argv += ["-a", str(self.address), "-n", namespace or self.namespace, *args]
        proc = subprocess.run(argv, capture_output=True, input=input, timeout=timeout + 10)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {proc.returncode}:\n"
                f"{proc.stderr.decode(errors='replace')[-3000:]}"
            )
        return proc


@contextlib.contextmanager
def serve_process(
    store_url: str, content_socket: Path, node_id: str, *, name: str, log_level: str = "info"
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cargohold serve`` (as ``python -m cargohold.plugin``) until the block ends."""
    argv = [
        sys.executable, "-m", "cargohold.plugin",
        "--address", f"unix://{content_socket}",
        "--store", store_url,
        "--node-id", node_id,
        "--log-level", log_level,
    ]  # fmt: skip
    with running(argv, unix_ready(content_socket), name=name, log_dir=LOG_DIR, cwd=str(REPO)) as p:
        yield p


@contextlib.contextmanager
def containerd_process(host_dir: Path, content_socket: Path | None, *, name: str) -> Iterator[Host]:
    """Start a containerd rooted in ``host_dir`` and yield its Host."""
    containerd_bin = binary("containerd", "CARGOHOLD_CONTAINERD")
    ctr_bin = binary("ctr", "CARGOHOLD_CTR")
    address = host_dir / "c.sock"
    config = host_dir / "config.toml"
    config.write_text(
        containerd_config(host_dir / "root", host_dir / "state", address, content_socket)
    )
    host = Host(name, host_dir, address, content_socket, ctr_bin)

    def ready() -> bool:
        if not unix_ready(address)():
            return False
        return host.ctr("version", timeout=5, check=False).returncode == 0

    argv = [containerd_bin, "--config", str(config), "--log-level", "debug"]
    with running(argv, ready, name=name, log_dir=LOG_DIR, timeout=60):
        _wait_for_startup_gc(LOG_DIR / f"{name}.log")
        yield host


STARTUP_GC_SECONDS = 30.0


def _wait_for_startup_gc(log: Path) -> None:
    """Wait (bounded) for the collection containerd runs ``startup_delay`` after it starts.

    A test that writes content no image or lease references (``ctr content ingest``) right
    after the daemon answers would otherwise race that collection, which removes it.
    """
    deadline = time.monotonic() + STARTUP_GC_SECONDS
    while 'msg="garbage collected"' not in log.read_text(errors="replace"):
        if time.monotonic() >= deadline:
            raise AssertionError(f"containerd ran no startup GC in {STARTUP_GC_SECONDS} s: {log}")
        time.sleep(0.05)


@pytest.fixture
def containerd_host(request: pytest.FixtureRequest) -> Iterator[Callable[..., Host]]:
    """Factory: ``containerd_host(store_url, node_id)`` → a Host with its own serve process.

    ``store_url=None`` gives a containerd on its builtin content store.
    """
    stack = contextlib.ExitStack()
    test = request.node.name.replace("/", "_")[:60]

    def start(store_url: str | None, node_id: str = "node-a") -> Host:
        host_dir = Path(tempfile.mkdtemp(prefix="chc-", dir="/tmp"))
        stack.callback(shutil.rmtree, host_dir, ignore_errors=True)
        name = f"{test}-{node_id}"
        socket_path: Path | None = None
        if store_url is not None:
            socket_path = host_dir / "content.sock"
            stack.enter_context(
                serve_process(store_url, socket_path, node_id, name=f"{name}-serve")
            )
        host = stack.enter_context(containerd_process(host_dir, socket_path, name=name))
        if store_url is not None:
            host.serve_log = LOG_DIR / f"{name}-serve.log"
        return host

    with stack:
        yield start
