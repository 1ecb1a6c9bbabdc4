"""Stress through containerd's proxy client: writers on shared refs racing listings and aborts.

``TestStress`` in ``tests/gosuite`` runs 6 writers on 12 shared refs (commit; close half-way and
resume; cancel mid-stream; truncate and rewrite) against loops of ListStatuses, Status, Walk and
Abort, every call under a 20 s deadline, then reads back every committed blob and sends the
server SIGTERM while three writers still hold open streams. Here we check the Go verdict and
that the server exited within its grace period of that SIGTERM.

``CARGOHOLD_STRESS_DURATION`` shortens the load for a local run (CI runs the full 60 s).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .gorunner import SOCKET_ENV, run_go_test, serving

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

DURATION = float(os.environ.get("CARGOHOLD_STRESS_DURATION", "60"))
CALL_TIMEOUT = 20.0
GRACE = 5.0
S3_PART_SIZE = 5 << 20
# Interpreter teardown after the server has stopped (closing the store, joining threads).
EXIT_SLACK = 1.0
_SIGTERM_AT = re.compile(r"^cargohold-stress: SIGTERM at (\d+) with (\d+) writers open$", re.M)


@pytest.mark.parametrize("engine", ["grpcio", "h2"])
def test_stress(
    engine: str, shared_plugin_store_url: str, go_test_binary: Path, tmp_path: Path
) -> None:
    """No call runs into its deadline, no unexpected error, every commit reads back, and the
    server exits within its grace period of SIGTERM."""
    kind = shared_plugin_store_url.split(":", 1)[0]
    url = shared_plugin_store_url
    if kind == "s3":
        url += f"&part_size={S3_PART_SIZE}"  # the smallest S3 allows: blobs of several parts
    with serving(url, name=f"stress-{kind}-{engine}", grace=GRACE, engine=engine) as server:
        env = {
            SOCKET_ENV: str(server.socket),
            "CARGOHOLD_STRESS_DURATION": str(DURATION),
            "CARGOHOLD_STRESS_CALL_TIMEOUT": str(CALL_TIMEOUT),
            "CARGOHOLD_STRESS_WRITERS": "6",
            "CARGOHOLD_STRESS_REFS": "12",
            "CARGOHOLD_STRESS_SERVER_PID": str(server.proc.pid),
        }
        # The bound covers the load phase and the read-back of everything committed, which on
        # a busy 2-core machine takes longer than the load itself; each call keeps its own
        # CALL_TIMEOUT deadline, so a stuck call still fails the test on its own.
        go = run_go_test(
            go_test_binary, "TestStress", env, timeout=DURATION + 6 * CALL_TIMEOUT, cwd=tmp_path
        )
        exited = server.wait_exit(GRACE + EXIT_SLACK + 5)
    print(go.tail())  # the outcome counts per operation (shown with pytest -rP)
    assert not go.timed_out, f"the stress test ran past its bound:\n{go.tail()}"
    assert go.returncode == 0, f"the stress test failed on {kind}:\n{go.tail()}"
    sent = _SIGTERM_AT.search(go.output)
    assert sent is not None, f"the stress test did not send SIGTERM:\n{go.tail()}"
    assert exited and server.exited_at is not None, (
        f"cargohold serve ({kind}) was still running {GRACE + EXIT_SLACK + 5}s after SIGTERM "
        f"(stacks at the end of its log):\n{server.log_tail()}"
    )
    took = server.exited_at - int(sent.group(1)) / 1e9
    print(f"cargohold serve ({kind}) exited {took:.2f}s after SIGTERM")
    assert took <= GRACE + EXIT_SLACK, (
        f"cargohold serve ({kind}) exited {took:.1f}s after SIGTERM, its grace period is "
        f"{GRACE}s:\n{server.log_tail()}"
    )
