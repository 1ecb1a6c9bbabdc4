"""Build the Go harness in ``tests/gosuite`` and run it against ``cargohold serve`` processes.

The harness is containerd's own client code (``content/proxy``) driving the plugin over its
unix socket: containerd's ``ContentSuite`` and a stress test. It builds offline in GOPATH mode
from Debian's ``golang-go`` and ``golang-github-containerd-containerd-dev`` (installed by
``.ci/install/go.sh``); the harness is copied into a private GOPATH at test time. A missing
toolchain fails the tests, it never skips them.

Servers run with ``PYTHONFAULTHANDLER=1``: a server that does not stop after SIGTERM gets
SIGABRT, which writes every thread's stack into its log, and then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.emulators._process import unix_ready

REPO = Path(__file__).resolve().parents[2]
GO_SOURCES = REPO / "tests" / "gosuite"
LOG_DIR = REPO / "test-logs" / "gosuite"
GOCODE = Path("/usr/share/gocode")
CONTAINERD_SRC = GOCODE / "src" / "github.com" / "containerd" / "containerd"
IMPORT_PATH = "cargohold.test"
# Kept between runs (.tools/ is ignored by git): a warm cache builds in a second or two.
GO_CACHE = REPO / ".tools" / "go-build-cache"
SOCKET_ENV = "CARGOHOLD_GOSUITE_SOCKET"


class GoBuildError(RuntimeError):
    """The Go toolchain or containerd's sources are missing, or the build failed."""


def go_build(sources: Path, workdir: Path, output: str, *, test: bool) -> Path:
    """Build the Go package in ``sources`` offline, in GOPATH mode, in a private GOPATH next
    to Debian's; return the binary (``go test -c`` with ``test``, else ``go build``)."""
    go = shutil.which("go")
    if go is None:
        raise GoBuildError("go not found: run .ci/install/go.sh (Debian's golang-go)")
    if not (CONTAINERD_SRC / "content" / "testsuite" / "testsuite.go").is_file():
        raise GoBuildError(
            f"containerd sources not found under {CONTAINERD_SRC}: run .ci/install/go.sh "
            "(Debian's golang-github-containerd-containerd-dev)"
        )
    gopath = workdir / "gopath"
    package = gopath / "src" / IMPORT_PATH / sources.name
    package.mkdir(parents=True)
    for source in sources.glob("*.go"):
        shutil.copy2(source, package / source.name)
    binary = workdir / output
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOPATH": f"{gopath}{os.pathsep}{GOCODE}",
        "GOCACHE": str(GO_CACHE),
        "CGO_ENABLED": "0",
    }
    argv = [go, "test", "-c"] if test else [go, "build"]
    built = subprocess.run(
        [*argv, "-o", str(binary), "."],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if built.returncode != 0:
        raise GoBuildError(f"building {sources.name} failed:\n{built.stdout}\n{built.stderr}")
    return binary


def build_test_binary(workdir: Path) -> Path:
    """``go test -c`` the harness (tests/gosuite); return the binary. Fails the test if it
    cannot be built: a missing toolchain is a failure, never a skip."""
    try:
        return go_build(GO_SOURCES, workdir, "gosuite.test", test=True)
    except GoBuildError as exc:
        pytest.fail(str(exc))


@dataclass
class ServeProcess:
    """A ``cargohold serve`` child process on a unix socket, and when it exited."""

    proc: subprocess.Popen[bytes]
    socket: Path
    log: Path
    grace: float
    exited_at: float | None = None
    _exited: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        """Note the wall-clock time of the exit (compared with when SIGTERM was sent)."""
        self.proc.wait()
        self.exited_at = time.time()
        self._exited.set()

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to exit; say whether it did."""
        return self._exited.wait(timeout)

    def log_tail(self, chars: int = 6000) -> str:
        """The end of the server's log."""
        return self.log.read_text(errors="replace")[-chars:]


def stop_server(server: ServeProcess) -> bool:
    """SIGTERM; after the grace period and 5 s more, SIGABRT (stack dump) and SIGKILL.

    Returns whether the server exited by itself after SIGTERM.
    """
    if server.proc.poll() is not None:
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.proc.pid, signal.SIGTERM)
    if server.wait_exit(server.grace + 5):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.proc.pid, signal.SIGABRT)
    if not server.wait_exit(5):
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.proc.pid, signal.SIGKILL)
        server.wait_exit(10)
    return False


@contextlib.contextmanager
def serving(
    store_url: str, *, name: str, grace: float = 5.0, engine: str | None = None
) -> Iterator[ServeProcess]:
    """Run ``cargohold serve`` for ``store_url`` on a fresh unix socket; stop it by PID.

    ``engine`` picks ``serve --engine``; None leaves it to ``$CARGOHOLD_SERVE_ENGINE`` (h2 when
    unset)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{name}.log"
    with tempfile.TemporaryDirectory(prefix="chg-", dir="/tmp") as sock_dir:  # sun_path limit
        path = Path(sock_dir) / "content.sock"
        argv = [sys.executable, "-m", "cargohold", "serve", "--address", f"unix://{path}"]
        argv += ["--store", store_url, "--node-id", "gosuite", "--grace", str(grace)]
        if engine is not None:
            argv += ["--engine", engine]
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                start_new_session=True,
            )
        server = ServeProcess(proc, path, log, grace)
        threading.Thread(target=server.watch, name=f"watch-{name}", daemon=True).start()
        try:
            deadline = time.monotonic() + 60
            while not (path.exists() and unix_ready(path)()):
                if server.proc.poll() is not None:
                    pytest.fail(f"cargohold serve exited before it was ready:\n{server.log_tail()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"cargohold serve was not ready in 60 s:\n{server.log_tail()}")
                time.sleep(0.1)
            yield server
        finally:
            stop_server(server)


@dataclass
class GoRun:
    """One run of the test binary: its exit code, output, and whether it ran out of time."""

    returncode: int | None
    output: str
    timed_out: bool

    def tail(self, chars: int = 8000) -> str:
        """The end of the output (where Go prints the summary and any failure)."""
        return self.output[-chars:]


def run_go_test(
    binary: Path, test: str, env: Mapping[str, str], *, timeout: float, cwd: Path
) -> GoRun:
    """Run one top-level Go test verbosely, bounded by Go's own timeout and a hard kill."""
    argv = [str(binary), "-test.v", "-test.count=1", "-test.run", f"^{test}$"]
    # Go's own timeout fails the test with every goroutine's stack; the kill is the backstop.
    argv.append(f"-test.timeout={int(timeout)}s")
    try:
        done = subprocess.run(
            argv,
            env={**os.environ, **env},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout + 30,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout or b""
        output = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
        return GoRun(None, output, timed_out=True)
    return GoRun(done.returncode, done.stdout + done.stderr, timed_out=False)


@dataclass
class CaseResult:
    """One subtest's verdict and its lines of output."""

    status: str  # PASS, FAIL or SKIP
    seconds: float
    lines: list[str]

    def excerpt(self, limit: int = 40) -> str:
        """The case's output, without the suite's noisy timestamp comparisons."""
        kept = [line for line in self.lines if "compare update" not in line]
        return "\n".join(kept[-limit:])


_RUN = re.compile(r"^=== (?:RUN|CONT)\s+(\S+)$")
_VERDICT = re.compile(r"^\s*--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)$")


def parse_subtests(output: str, parent: str) -> dict[str, CaseResult]:
    """The verdicts of ``parent``'s subtests in ``go test -v`` output, with their output."""
    lines_of: dict[str, list[str]] = {}
    current: str | None = None
    verdicts: dict[str, tuple[str, float]] = {}
    for line in output.splitlines():
        started = _RUN.match(line)
        if started:
            name = started.group(1)
            current = name.split("/", 1)[1] if name.startswith(parent + "/") else None
            if current is not None:
                lines_of.setdefault(current, [])
            continue
        verdict = _VERDICT.match(line)
        if verdict and verdict.group(2).startswith(parent + "/"):
            case = verdict.group(2).split("/", 1)[1]
            verdicts[case] = (verdict.group(1), float(verdict.group(3)))
            continue
        if current is not None:
            lines_of[current].append(line)
    return {
        case: CaseResult(status, seconds, lines_of.get(case, []))
        for case, (status, seconds) in verdicts.items()
    }
