"""A third-party driver runs cargohold's conformance suite (docs/testing.md).

example/ is what a driver package writes: its driver, a root conftest.py loading the plugin and
a test module with the one fixture and the star import. Here it is installed the way pip would
(a ``.dist-info`` with ``entry_points.txt`` in a folder on the path) and run in a pytest of its
own, in another process: the suite's tests all run and pass, and a leaky variant of the driver
is caught by the leftover check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import cargohold.testing.suite

EXAMPLE = Path(__file__).parent / "example"
ENTRY_POINTS = """\
[cargohold.drivers]
example = cargohold_example_driver:from_url
example-leaky = cargohold_example_driver:leaky_from_url
"""
SUITE_TESTS = {name for name in cargohold.testing.suite.__all__ if name.startswith("test_")}


@dataclass
class Run:
    """What a pytest run of the example reported, from its JUnit XML."""

    returncode: int
    output: str
    passed: set[str] = field(default_factory=set)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example driver installed in a site folder, its tests in a project folder."""
    root = tmp_path_factory.mktemp("thirdparty")
    site = root / "site"
    info = site / "cargohold_example_driver-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cargohold-example-driver\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    shutil.copy(EXAMPLE / "cargohold_example_driver.py", site)
    tests = root / "project"
    tests.mkdir()
    for name in ("conftest.py", "test_conformance.py"):
        shutil.copy(EXAMPLE / name, tests)
    return root


def _run(project: Path, scheme: str, *args: str) -> Run:
    junit = project / f"{scheme}.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(project / "site"), *sys.path])
    env["EXAMPLE_SCHEME"] = scheme
    env.pop("CARGOHOLD_TEST_STORES", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--strict-markers"]
    proc = subprocess.run(
        [*command, f"--junitxml={junit}", "-o", "junit_family=xunit2", *args],
        cwd=project / "project",
        env=env,
        capture_output=True,
        text=True,
        timeout=800,
    )
    run = Run(proc.returncode, proc.stdout + proc.stderr)
    assert junit.exists(), run.output
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        problems = [c for c in case if c.tag in ("failure", "error")]
        skipped = case.find("skipped")
        if problems:
            run.failed[name] = "\n".join(p.get("message", "") + (p.text or "") for p in problems)
        elif skipped is not None:
            run.skipped[name] = skipped.get("message", "")
        else:
            run.passed.add(name)
    return run


def _function(case: str) -> str:
    return case.split("[", 1)[0]


def test_the_suite_runs_and_passes_on_a_third_party_driver(project: Path) -> None:
    run = _run(project, "example")
    assert run.returncode == 0, run.output[-5000:]
    assert not run.failed and not run.skipped, (run.failed, run.skipped)
    assert {_function(case) for case in run.passed} == SUITE_TESTS
    assert len(run.passed) > len(SUITE_TESTS)  # parametrized ones more than once


def test_the_leftover_check_catches_a_driver_that_leaks_upload_sessions(project: Path) -> None:
    run = _run(project, "example-leaky")
    assert run.returncode == 1, run.output[-5000:]
    caught = {
        case: text
        for case, text in run.failed.items()
        if "the test left these in the store" in text and "upload:" in text
    }
    assert caught, run.output[-5000:]
    # Most of them pass their own assertions: the check, at teardown, is what catches them.
    assert sum(text.startswith("failed on teardown") for text in caught.values()) >= 3, caught
    # Tests that never abort an upload session pass as on the sound driver.
    assert "test_put_get_head_list_delete" in run.passed


BLOCK_SDKS = """
import sys

BLOCKED = {"boto3", "botocore", "google", "azure", "grpc", "moto", "hypothesis"}


class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed here")


sys.meta_path.insert(0, Block())
import cargohold.testing.conformance._child
import cargohold.testing.plugin
import cargohold.testing.suite

print(len(cargohold.testing.suite.__all__))
"""


def test_the_suite_needs_only_pytest_and_cargohold() -> None:
    """The testing extra is pytest alone: no cloud SDK, emulator or test tool is imported."""
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_SDKS], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= len(SUITE_TESTS)
