"""containerd's own content test suite against ``cargohold serve``, through containerd's client.

``tests/gosuite`` hands ``proxy.NewContentStore`` (a gRPC connection to the plugin's socket)
to containerd 1.6's ``testsuite.ContentSuite``, with a fresh namespace and a deadline per case.
The suite runs once per store kind and server engine (grpcio, h2), against one server; each of
its 12 cases is reported as a test of its own. The cases run in order, so a server that stops
answering fails the case that hung at its deadline and every later case at once ("not run: the
server stopped answering").
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import STORE_KINDS

from .gorunner import SOCKET_ENV, CaseResult, GoRun, parse_subtests, run_go_test, serving

pytestmark = pytest.mark.multiprocess

SUITE = "TestContentSuite"
CASES = [
    "Writer",
    "UpdateStatus",
    "CommitExists",
    "Resume",
    "ResumeTruncate",
    "ResumeDiscard",
    "ResumeCopy",
    "ResumeCopySeeker",
    "ResumeCopyReaderAt",
    "SmallBlob",
    "Labels",
    "CommitErrorState",
]
# Every case applies to a proxy store: none is skipped.
SUITE_KINDS = [kind for kind in ("memory", "file", "s3", "azure", "gcs") if kind in STORE_KINDS]
CASE_TIMEOUT = 30.0  # every call of a case carries this deadline (seconds)
PROBE_TIMEOUT = 10.0  # the clean-up after a case (ListStatuses, Abort)
RUN_TIMEOUT = 240.0  # the whole suite on one store, hung cases included
GRACE = 5.0
ENGINES = ["grpcio", "h2"]


@dataclass
class SuiteRun:
    """The suite's run on one store kind and how its server stopped."""

    go: GoRun
    cases: dict[str, CaseResult]
    stopped_in_grace: bool
    server_log: str


_runs: dict[tuple[str, str], SuiteRun] = {}


def suite_run(
    kind: str, engine: str, request: pytest.FixtureRequest, binary: Path, workdir: Path
) -> SuiteRun:
    """Run the suite on ``kind`` with ``engine`` once (the first such case to run does it)."""
    if (kind, engine) not in _runs:
        url: str = request.getfixturevalue(STORE_KINDS[kind])
        name = f"content-suite-{kind}-{engine}"
        with serving(url, name=name, grace=GRACE, engine=engine) as server:
            env = {
                SOCKET_ENV: str(server.socket),
                "CARGOHOLD_GOSUITE_CASE_TIMEOUT": str(CASE_TIMEOUT),
                "CARGOHOLD_GOSUITE_PROBE_TIMEOUT": str(PROBE_TIMEOUT),
            }
            go = run_go_test(binary, SUITE, env, timeout=RUN_TIMEOUT, cwd=workdir)
            server.proc.send_signal(signal.SIGTERM)
            stopped = server.wait_exit(GRACE + 1)
        # Read after serving() stopped it: a server that hung got SIGABRT and logged its stacks.
        log = server.log_tail()
        _runs[kind, engine] = SuiteRun(go, parse_subtests(go.output, SUITE), stopped, log)
    return _runs[kind, engine]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", SUITE_KINDS)
@pytest.mark.parametrize("engine", ENGINES)
def test_content_suite(
    kind: str,
    case: str,
    engine: str,
    request: pytest.FixtureRequest,
    go_test_binary: Path,
    tmp_path: Path,
) -> None:
    """One case of containerd's ContentSuite on one store kind, served by one engine."""
    run = suite_run(kind, engine, request, go_test_binary, tmp_path)
    result = run.cases.get(case)
    assert result is not None, (
        f"{case} reported no verdict on {kind} (go exit {run.go.returncode}, "
        f"timed out: {run.go.timed_out}):\n{run.go.tail()}"
    )
    assert result.status == "PASS", f"{case} on {kind}: {result.status}\n{result.excerpt()}"


@pytest.mark.parametrize("kind", SUITE_KINDS)
@pytest.mark.parametrize("engine", ENGINES)
def test_content_suite_run(
    kind: str, engine: str, request: pytest.FixtureRequest, go_test_binary: Path, tmp_path: Path
) -> None:
    """The suite ran its 12 cases and no others, and the server then stopped on SIGTERM."""
    run = suite_run(kind, engine, request, go_test_binary, tmp_path)
    assert not run.go.timed_out, f"the suite ran past {RUN_TIMEOUT}s on {kind}:\n{run.go.tail()}"
    assert sorted(run.cases) == sorted(CASES), run.go.tail()
    assert run.stopped_in_grace, (
        f"cargohold serve ({kind}, {engine}) did not exit within {GRACE + 1}s of SIGTERM:\n"
        f"{run.server_log}"
    )


def test_content_suite_hung_server_fails_in_bounded_time(
    memory_store_url: str, go_test_binary: Path, tmp_path: Path
) -> None:
    """The harness's own bound: against a server that accepts but never answers (SIGSTOP), the
    first case fails at its deadline, every later case at once, and the run ends."""
    case_timeout, probe_timeout = 3.0, 2.0
    with serving(memory_store_url, name="content-suite-stopped", grace=1.0) as server:
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            env = {
                SOCKET_ENV: str(server.socket),
                "CARGOHOLD_GOSUITE_CASE_TIMEOUT": str(case_timeout),
                "CARGOHOLD_GOSUITE_PROBE_TIMEOUT": str(probe_timeout),
            }
            started = time.monotonic()
            go = run_go_test(go_test_binary, SUITE, env, timeout=60, cwd=tmp_path)
            took = time.monotonic() - started
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
    cases = parse_subtests(go.output, SUITE)
    assert sorted(cases) == sorted(CASES), go.tail()
    assert all(result.status == "FAIL" for result in cases.values()), go.tail()
    assert "context deadline exceeded" in cases[CASES[0]].excerpt(), go.tail()
    for case in CASES[1:]:
        assert "not run: the server stopped answering" in cases[case].excerpt(), go.tail()
    assert took < case_timeout + probe_timeout + 10, f"{took:.1f}s:\n{go.tail()}"
