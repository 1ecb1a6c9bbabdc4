"""A local OCI registry for pull benchmarks: Debian's ``docker-registry`` on 127.0.0.1.

Started with a config of its own (filesystem storage in a temporary directory), stopped by PID.
Images are pushed to it with ``skopeo copy`` from an OCI archive.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from _common import LOG_DIR
from tests.emulators._process import free_port, http_ready, running


@contextlib.contextmanager
def registry() -> Iterator[str]:
    """A running registry; yields its ``127.0.0.1:PORT``."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise SystemExit("docker-registry is missing: apt-get install docker-registry")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="chb-registry-") as d:
        config = Path(d) / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {d}/data\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        probe = http_ready(f"http://127.0.0.1:{port}/v2/")
        with running([binary, "serve", str(config)], probe, name="registry", log_dir=LOG_DIR):
            yield f"127.0.0.1:{port}"


def push(archive: Path, ref: str) -> None:
    """Push the OCI archive ``archive`` (one image) to ``ref`` over plain HTTP."""
    subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", f"oci-archive:{archive}", f"docker://{ref}"],
        check=True,
        capture_output=True,
        timeout=600,
    )
