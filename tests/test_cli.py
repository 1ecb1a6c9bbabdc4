"""The command-line tool, run as a real process against a file:// store."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HELLO = "sha256:" + hashlib.sha256(b"hello").hexdigest()


def run(
    store: str, *args: str, stdin: bytes = b"", check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CARGOHOLD_STORE": store}
    done = subprocess.run(
        [sys.executable, "-m", "cargohold", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr.decode()
    return done


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'store'}"


def test_round_trip_ingest_ls_get(store: str, tmp_path: Path) -> None:
    out = run(store, "ingest", "demo-ref", "--label", "kind=greeting", stdin=b"hello")
    assert out.stdout.decode().strip() == HELLO
    listing = run(store, "ls").stdout.decode().splitlines()
    assert listing[0].split() == ["DIGEST", "SIZE", "AGE", "LABELS"]
    assert listing[1].startswith(HELLO) and "kind=greeting" in listing[1]
    assert run(store, "get", HELLO).stdout == b"hello"
    target = tmp_path / "out.bin"
    run(store, "get", HELLO, "-o", str(target))
    assert target.read_bytes() == b"hello"
    again = run(store, "ingest", "demo-ref", "--expected", HELLO, stdin=b"hello")
    assert again.stdout.decode().strip() == HELLO  # already stored counts as success


def test_json_output_labels_and_filters(store: str) -> None:
    run(store, "ingest", "r1", stdin=b"hello")
    run(store, "label", HELLO, "a=1", "b=2")
    run(store, "label", HELLO, "a=")
    info = json.loads(run(store, "--json", "info", HELLO).stdout)
    assert info["labels"] == {"b": "2"} and info["size"] == 5
    assert [i["digest"] for i in json.loads(run(store, "--json", "ls", "labels.b==2").stdout)] == [
        HELLO
    ]
    assert json.loads(run(store, "--json", "ls", "labels.a").stdout) == []
    assert run(store, "ls", "-q").stdout.decode().split() == [HELLO]


def test_big_file_multipart_and_digest_checks(store: str, tmp_path: Path) -> None:
    data = os.urandom(9 * 1024 * 1024 + 3)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    out = run(store, "ingest", "big", str(source), "--size", str(len(data)), "--expected", digest)
    assert out.stdout.decode().strip() == digest
    assert run(store, "get", digest).stdout == data
    bad = run(store, "ingest", "bad", str(source), "--expected", HELLO, check=False)
    assert bad.returncode == 1
    assert b"FailedPreconditionError" in bad.stderr and len(bad.stderr.splitlines()) == 1
    active = run(store, "active").stdout.decode().splitlines()
    assert active[0].split() == ["REF", "SIZE", "AGE"] and active[1].startswith("bad")
    run(store, "abort", "bad")
    assert json.loads(run(store, "--json", "active").stdout) == []
    run(store, "rm", digest)
    assert run(store, "get", digest, check=False).returncode == 1


@pytest.mark.parametrize(
    "args",
    [
        ("info", "sha256:nothex"),
        ("get", "md5:abc"),
        ("ls", "labels.a=="),
        ("label", HELLO, "novalue"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(store: str, args: tuple[str, ...]) -> None:
    done = run(store, *args, check=False)
    assert done.returncode == 2
    assert len(done.stderr.decode().strip().splitlines()) == 1
    assert done.stderr.startswith(b"cargohold: error:")


def test_missing_content_exit_1(store: str) -> None:
    done = run(store, "info", HELLO, check=False)
    assert done.returncode == 1
    assert b"NotFoundError" in done.stderr


def test_default_store_is_under_the_user_data_dir(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CARGOHOLD_STORE"}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    done = subprocess.run(
        [sys.executable, "-m", "cargohold", "ingest", "x"],
        input=b"hello",
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert done.stdout.decode().strip() == HELLO
    assert (tmp_path / "xdg" / "cargohold" / "store" / "blobs" / "sha256").is_dir()
