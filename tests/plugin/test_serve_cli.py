"""``cargohold serve`` as a command: where its store comes from, how it fails, its help.

Every case runs ``python -m cargohold ... serve`` as a real process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import cargohold
from cargohold.plugin.gen import content_pb2 as pb

from .serveproc import WriteStream, serve_process

pytestmark = pytest.mark.multiprocess

DOCS = Path(__file__).resolve().parents[2] / "docs" / "containerd.md"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CARGOHOLD_STORE"}
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The only line on stderr that is not a JSON log line; no traceback."""
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def _ingest_through(served_stub: object, ref: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    stream = WriteStream(served_stub)  # type: ignore[arg-type]
    stream.request(pb.WriteContentRequest(action=pb.WRITE, ref=ref, offset=0, data=data))
    reply = stream.request(
        pb.WriteContentRequest(
            action=pb.COMMIT, ref=ref, offset=len(data), total=len(data), expected=digest
        )
    )
    assert reply.digest == digest
    return digest


def _holds(url: str, digest: str) -> bool:
    with cargohold.open_store(url) as store:
        try:
            store.info(digest)
        except cargohold.NotFoundError:
            return False
        return True


@pytest.mark.parametrize("how", ["global", "env", "own-over-global"])
def test_serve_takes_the_store_from_the_cli(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen, other = f"file://{tmp_path / 'chosen'}", f"file://{tmp_path / 'other'}"
    monkeypatch.delenv("CARGOHOLD_STORE", raising=False)
    global_args: list[str] = []
    args = ["--node-id", "n1"]
    env = {}
    if how == "global":
        global_args = ["--store", chosen]
    elif how == "env":
        env = {"CARGOHOLD_STORE": chosen}
    else:
        global_args = ["--store", other]
        args += ["--store", chosen]
    with serve_process(f"serve-cli-{how}", args, global_args=global_args, env=env) as served:
        channel = served.channel()
        digest = _ingest_through(served.stub(channel), "r/1/x", b"hello " + how.encode())
        channel.close()
    assert _holds(chosen, digest)
    if how == "own-over-global":
        assert not _holds(other, digest)


def test_serve_without_the_grpc_extra_prints_the_install_hint() -> None:
    # grpc made unimportable in the child: `import grpc` raises ModuleNotFoundError there.
    code = (
        "import sys; sys.modules['grpc'] = None; "
        "sys.argv = ['cargohold', 'serve', '--store', 'memory://x/y']; "
        "from cargohold.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    line = _one_line_error(result)
    assert "pip install 'cargohold[grpc]'" in line


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--address", "tcp://0.0.0.0:1"], 2, "cargohold: error: tcp addresses must be loopback"),
        (["--node-id", "-bad"], 2, "cargohold: error: node id must be"),
        (["--metrics-address", "nonsense"], 2, "cargohold: error: metrics address must be"),
        (["--store", " "], 2, "cargohold: error: the store URL is empty"),
        (["--store", "nope://x"], 2, "cargohold: error: "),
    ],
)
def test_serve_bad_input_is_one_line_exit_2(
    args: list[str], code: int, message: str, tmp_path: Path
) -> None:
    full = ["--store", f"file://{tmp_path}/s", "--address", "tcp://127.0.0.1:0", *args]
    result = _run("serve", *full)
    assert result.returncode == code, result.stderr
    assert _one_line_error(result).startswith(message)


def test_serve_without_a_store_is_one_line_exit_2() -> None:
    result = _run("serve", "--address", "tcp://127.0.0.1:0")
    assert result.returncode == 2
    assert "serve needs a store" in _one_line_error(result)


def test_serve_failures_are_one_line_exit_1(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    with serve_process("serve-cli-busy", ["--store", url, "--node-id", "n1"]) as served:
        busy = _run("serve", "--store", url, "--address", f"unix://{served.socket_path}")
        assert busy.returncode == 1
        line = _one_line_error(busy)
        assert line.startswith("cargohold: unavailable: another server is already listening")
        assert "give another --address" in line
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with tempfile.TemporaryDirectory(prefix="chs-", dir="/tmp") as tmp:
            result = _run(
                "serve",
                *("--store", url, "--address", f"unix://{tmp}/c.sock"),
                *("--metrics-address", f"127.0.0.1:{port}"),
            )
    assert result.returncode == 1
    line = _one_line_error(result)
    assert re.match(r"cargohold: error: cannot listen: .*[Aa]ddress already in use", line), line


def test_serve_errors_follow_the_global_json_flag(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s"
    result = _run("--json", "serve", "--store", url, "--address", "tcp://0.0.0.0:1")
    assert result.returncode == 2
    error = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    assert error["kind"] == "error" and error["exit_code"] == 2
    assert "loopback" in error["message"] and "--help" in error["hint"]


def test_python_m_plugin_fails_the_same_way(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "cargohold.plugin", "--store", f"file://{tmp_path}/s"]
    result = subprocess.run(
        [*argv, "--address", "tcp://0.0.0.0:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert _one_line_error(result).startswith("cargohold: error: tcp addresses must be loopback")


def test_node_id_help_agrees_with_the_docs() -> None:
    result = _run("serve", "--help")
    assert result.returncode == 0
    help_text = " ".join(result.stdout.split())
    default = re.search(r"Default: (\$CARGOHOLD_NODE_ID, else .*?host name\.)", help_text)
    assert default, help_text
    docs = " ".join(DOCS.read_text().split())
    assert default.group(1).rstrip(".") in docs
