"""The command-line tool, each case run as a real process, on file:// and on S3 (moto server)."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cargohold import Descriptor, Store
from cargohold.digests import parse_digest
from cargohold.ingest.state import decode_state
from cargohold.testing.helpers import open_small
from tests.conftest import STORE_KINDS

HELLO = "sha256:" + hashlib.sha256(b"hello").hexdigest()
MISSING = "sha256:" + "0" * 64
CLI_KINDS = [k for k in ("file", "s3") if k in STORE_KINDS]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def run(
    store: str | None,
    *args: str,
    stdin: bytes = b"",
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """``python -m cargohold ARGS`` with ``CARGOHOLD_STORE=store``."""
    environ = {**os.environ, **(env or {})}
    environ.pop("CARGOHOLD_STORE", None)
    if store is not None:
        environ["CARGOHOLD_STORE"] = store
    done = subprocess.run(
        [sys.executable, "-m", "cargohold", *args],
        input=stdin,
        capture_output=True,
        env=environ,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr.decode()
    return done


def one_line(done: subprocess.CompletedProcess[bytes]) -> str:
    """The single line a failing command printed on stderr."""
    lines = [line for line in done.stderr.decode().splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr.decode()
    assert "Traceback" not in lines[0]
    return lines[0]


@pytest.fixture(params=CLI_KINDS)
def store(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(STORE_KINDS[request.param])
    return url


@pytest.fixture
def file_store(file_store_url: str) -> str:
    return file_store_url


@pytest.fixture
def lib(store: str) -> Iterator[Store]:
    """The same store opened in the test process, with the smallest parts its driver allows."""
    with open_small(store) as opened:
        yield opened


def part_of(lib: Store) -> int:
    return lib.part_size


def half_ingested(lib: Store, ref: str, source: Path, *, seed: int, size: int, upto: int) -> bytes:
    """Write ``size`` random bytes (from ``seed``) to ``source``; leave ``ref`` open at ``upto``."""
    data = random.Random(seed).randbytes(size)
    source.write_bytes(data)
    with lib.writer(ref) as writer:
        writer.write(data[:upto])
    return data


def test_round_trip_ingest_ls_get(store: str, tmp_path: Path) -> None:
    out = run(store, "ingest", "demo-ref", "--label", "kind=greeting", stdin=b"hello")
    assert out.stdout.decode().strip() == HELLO
    listing = run(store, "ls").stdout.decode().splitlines()
    assert listing[0].split() == ["DIGEST", "SIZE", "AGE", "LABELS"]
    assert listing[1].startswith(HELLO) and "kind=greeting" in listing[1]
    assert "5 B" in listing[1]
    assert run(store, "get", HELLO).stdout == b"hello"
    target = tmp_path / "out.bin"
    run(store, "get", HELLO, "-o", str(target))
    assert target.read_bytes() == b"hello"
    again = run(store, "ingest", "demo-ref", "--expected", HELLO, stdin=b"hello")
    assert again.stdout.decode().strip() == HELLO  # already stored counts as success
    assert "already stored" in again.stderr.decode()


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


def test_labels_are_never_lost_by_accident(store: str) -> None:
    run(store, "ingest", "r", "--label", "containerd.io/gc.root=keep", stdin=b"hello")
    empty = run(store, "label", HELLO, check=False)
    assert empty.returncode == 2
    assert one_line(empty).startswith("cargohold: error: nothing to change;")
    again = json.loads(
        run(store, "--json", "ingest", "r2", "--label", "x=y", stdin=b"hello").stdout
    )
    assert again["existed"] is True and again["digest"] == HELLO
    expected = json.loads(
        run(store, "--json", "ingest", "r3", "--expected", HELLO, "--label", "z=1").stdout
    )
    assert expected["existed"] is True
    info = json.loads(run(store, "info", HELLO).stdout)
    assert info["labels"] == {"containerd.io/gc.root": "keep", "x": "y", "z": "1"}
    fresh = json.loads(run(store, "--json", "ingest", "r4", stdin=b"new").stdout)
    assert fresh["existed"] is False and fresh["resumed_at"] == 0
    assert json.loads(run(store, "--json", "active").stdout) == []


def test_failed_commit_is_one_line_and_names_the_remedy(store: str, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    bad = run(store, "ingest", "bad", str(source), "--expected", HELLO, check=False)
    assert bad.returncode == 1
    line = one_line(bad)
    assert line.startswith("cargohold: failed precondition:") and "cargohold abort bad" in line
    active = run(store, "active").stdout.decode().splitlines()
    assert active[0].split() == ["REF", "SIZE", "AGE"] and active[1].startswith("bad")
    assert "293.0 KiB" in active[1]
    run(store, "abort", "bad")
    assert json.loads(run(store, "--json", "active").stdout) == []
    digest = run(store, "ingest", "good", str(source)).stdout.decode().strip()
    assert digest == digest_of(data)
    run(store, "rm", digest)
    gone = run(store, "get", digest, check=False)
    assert gone.returncode == 1 and one_line(gone).startswith("cargohold: not found:")


def test_resumes_the_same_file_and_restarts_a_changed_one(
    store: str, lib: Store, tmp_path: Path
) -> None:
    part = part_of(lib)
    source = tmp_path / "a.bin"
    data = half_ingested(lib, "same", source, seed=1, size=3 * part + 1000, upto=2 * part + 10)
    offset = lib.status("same").offset
    assert offset > 0
    done = run(store, "ingest", "same", str(source))
    assert done.stdout.decode().strip() == digest_of(data)
    assert f"resuming at {offset} of {len(data)} bytes" in done.stderr.decode()

    other = random.Random(2).randbytes(len(data))
    changed = tmp_path / "b.bin"
    changed.write_bytes(other)
    with lib.writer("mix") as writer:
        writer.write(data[: 2 * part])
    done = run(store, "--json", "ingest", "mix", str(changed))
    result = json.loads(done.stdout)
    assert result["digest"] == digest_of(other) and result["resumed_at"] == 0
    assert "differ" in result["restarted"]
    assert f"restarting at 0 of {len(other)} bytes" in done.stderr.decode()
    assert run(store, "get", digest_of(other)).stdout == other


def test_lost_parts_restart_by_themselves_and_say_so(
    store: str, lib: Store, tmp_path: Path
) -> None:
    part = part_of(lib)
    source = tmp_path / "c.bin"
    data = half_ingested(lib, "lost", source, seed=7, size=3 * part + 11, upto=2 * part + 3)
    record, _tail = decode_state(lib.driver.get(lib.layout.state_key("lost")))
    assert record.upload_id and record.upload_key
    lib.driver.abort_upload(record.upload_key, record.upload_id)  # its parts are gone
    done = run(store, "ingest", "lost", str(source))
    assert done.stdout.decode().strip() == digest_of(data)
    notes = done.stderr.decode().strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith(
        f"cargohold: lost: restarting at 0 of {len(data)}"
    )
    assert run(store, "get", digest_of(data)).stdout == data


def test_stdin_resumes_only_with_expected(store: str, lib: Store) -> None:
    part = part_of(lib)
    data = random.Random(3).randbytes(2 * part + 77)
    with lib.writer("pipe") as writer:
        writer.write(data[: part + 5])
    done = run(store, "ingest", "pipe", stdin=data)
    assert "restarting at 0" in done.stderr.decode() and "expected" in done.stderr.decode()
    assert done.stdout.decode().strip() == digest_of(data)

    more = random.Random(4).randbytes(2 * part + 99)
    desc = Descriptor(digest=digest_of(more))
    with lib.writer("pipe2", desc) as writer:
        writer.write(more[: part + 5])
    offset = lib.status("pipe2").offset
    done = run(store, "ingest", "pipe2", "--expected", desc.digest, stdin=more)
    assert f"resuming at {offset}" in done.stderr.decode()
    assert run(store, "get", desc.digest).stdout == more


def test_get_verifies_and_leaves_no_partial_file(store: str, lib: Store, tmp_path: Path) -> None:
    data = random.Random(5).randbytes(200_000)
    digest = run(store, "ingest", "v", stdin=data).stdout.decode().strip()
    damaged = data[:-1] + bytes([data[-1] ^ 1])
    lib.driver.put(lib.layout.blob_key(parse_digest(digest)), damaged)
    target = tmp_path / "out" / "blob.bin"
    target.parent.mkdir()
    done = run(store, "get", digest, "-o", str(target), check=False)
    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith("cargohold: data loss:") and f"cargohold rm {digest}" in line
    assert list(target.parent.iterdir()) == []
    piped = run(store, "get", digest, check=False)
    assert piped.returncode == 1 and one_line(piped).startswith("cargohold: data loss:")
    unchecked = run(store, "get", "--no-verify", digest)
    assert unchecked.stdout == damaged


def test_get_verifies_a_blob_damaged_on_disk(file_store: str, tmp_path: Path) -> None:
    data = b"x" * 10_000
    digest = run(file_store, "ingest", "d", stdin=data).stdout.decode().strip()
    root = Path(file_store.removeprefix("file://"))
    blob = root / "blobs" / "sha256" / digest.removeprefix("sha256:")
    blob.write_bytes(b"y" * 10_000)
    done = run(file_store, "--json", "get", digest, check=False)
    assert done.returncode == 1
    error = json.loads(done.stderr)["error"]
    assert error["kind"] == "data loss" and error["exit_code"] == 1


def test_rm_goes_on_past_a_missing_digest(store: str) -> None:
    a = run(store, "ingest", "a", stdin=b"a").stdout.decode().strip()
    c = run(store, "ingest", "c", stdin=b"c").stdout.decode().strip()
    done = run(store, "rm", a, MISSING, c, check=False)
    assert done.returncode == 1
    assert done.stdout.decode().split() == [a, c]
    assert one_line(done).startswith("cargohold: not found:")
    assert run(store, "ls", "-q").stdout == b""
    run(store, "ingest", "a", stdin=b"a")
    done = run(store, "--json", "rm", MISSING, a, check=False)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["deleted"] == [a] and report["failed"][0]["name"] == MISSING
    assert json.loads(done.stderr)["error"]["kind"] == "not found"
    aborted = run(store, "abort", "nothing-here", check=False)
    assert aborted.returncode == 1 and "cargohold active" in one_line(aborted)


@pytest.mark.parametrize(
    ("args", "code", "start"),
    [
        (("info", "sha256:nothex"), 2, "cargohold: error: invalid digest"),
        (("get", "md5:abc"), 2, "cargohold: error: invalid digest"),
        (("ls", "labels.a=="), 2, "cargohold: error:"),
        (("label", HELLO, "novalue"), 2, "cargohold: error: a label must look like"),
        (("label",), 2, "cargohold: error: Missing argument 'DIGEST'"),
        (("nosuchcommand",), 2, "cargohold: error: No such command"),
        (("ingest", "r", "--size", "-1"), 2, "cargohold: error:"),
        (("ingest", "r", "/nonexistent/file"), 2, "cargohold: error: cannot read"),
        (("ingest", "", "-"), 2, "cargohold: error: ref must not be empty"),
        (("ingest", "r", "--expected", "sha256:zz"), 2, "cargohold: error: invalid digest"),
        (("get", HELLO, "-o", "/nonexistent/dir/out"), 2, "cargohold: error: cannot write"),
        (("info", HELLO), 1, "cargohold: not found:"),
        (("--store", "", "ls"), 2, "cargohold: error: Invalid value for '--store'"),
    ],
)
def test_bad_input_and_failures_are_one_line(
    store: str, args: tuple[str, ...], code: int, start: str
) -> None:
    run(store, "ingest", "r0", stdin=b"x")  # the store exists
    done = run(store, *args, check=False)
    assert done.returncode == code, done.stderr.decode()
    line = one_line(done)
    assert line.startswith(start), line
    assert "; " in line  # every message says what to do next
    as_json = run(store, "--json", *args, check=False)
    assert as_json.returncode == code
    error = json.loads(as_json.stderr)["error"]
    assert error["exit_code"] == code and error["hint"]


def test_missing_input_file_leaves_no_ingestion(store: str) -> None:
    run(store, "ingest", "r0", stdin=b"x")  # the store exists
    done = run(store, "ingest", "m1", "/nonexistent/file", check=False)
    assert done.returncode == 2
    assert run(store, "active").stdout.decode().splitlines()[1:] == []


@pytest.mark.parametrize(
    "query",
    ["profile=nope", "endpoint_url=notaurl"],
)
def test_bad_s3_options_are_one_line(query: str) -> None:
    done = run(f"s3://bucket/prefix?{query}", "ls", check=False)
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("cargohold: error: cannot open s3://bucket")
    assert "--store or CARGOHOLD_STORE" in line


def test_read_only_commands_do_not_create_a_mistyped_store(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "store"
    for args in (("ls",), ("active",), ("info", HELLO), ("get", HELLO), ("rm", HELLO)):
        done = run(f"file://{missing}", *args, check=False)
        assert done.returncode == 1
        assert one_line(done).startswith("cargohold: not found: there is no cargohold store at")
    assert not (tmp_path / "no").exists()
    run(f"file://{missing}", "ingest", "r", stdin=b"hello")
    assert run(f"file://{missing}", "ls", "-q").stdout.decode().split() == [HELLO]


def _without_dac_override() -> None:
    """In the child, before exec: drop root's right to ignore file permissions (the bounding
    set's CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH), so a mode-0555 folder is read-only."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unwritable_store_directory(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    store_dir.chmod(0o555)
    environ = {**os.environ, "CARGOHOLD_STORE": f"file://{store_dir}"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cargohold", "ingest", "r"],
            input=b"hello",
            capture_output=True,
            env=environ,
            timeout=120,
            check=False,
            preexec_fn=_without_dac_override if os.geteuid() == 0 else None,
        )
    finally:
        store_dir.chmod(0o755)
    assert done.returncode == 1
    line = one_line(done)
    assert "Permission denied" in line and "; " in line


def interrupt_ingest(store: str, ref: str, head: bytes, *options: str) -> str:
    """Feed ``head`` to ``cargohold ingest REF`` through a pipe that stays open, press Ctrl-C
    once the bytes are in, and return the one line it printed (after checking exit 130)."""
    environ = {**os.environ, "CARGOHOLD_STORE": store}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cargohold", "ingest", ref, *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
    )
    assert proc.stdin is not None
    proc.stdin.write(head)
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the ingestion exists
        listed = run(store, "--json", "active", check=False)  # no store yet: not yet
        if listed.returncode == 0 and json.loads(listed.stdout):
            break
        time.sleep(0.2)
    time.sleep(0.5)  # the bytes written reach the writer
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    proc.stdin.close()
    assert proc.returncode == 130, err.decode()
    line = one_line(subprocess.CompletedProcess([], 130, out, err))
    assert line.startswith("cargohold: interrupted:")
    return line


def test_ctrl_c_exits_130_and_the_same_command_resumes(store: str, lib: Store) -> None:
    data = random.Random(6).randbytes(2 * part_of(lib) + 5)
    digest = digest_of(data)
    line = interrupt_ingest(store, "cc", data[: part_of(lib) + 3], "--expected", digest)
    assert "run the same command again to resume" in line
    statuses = json.loads(run(store, "--json", "active").stdout)
    assert [s["ref"] for s in statuses] == ["cc"] and statuses[0]["offset"] > 0
    done = run(store, "ingest", "cc", "--expected", digest, stdin=data)
    assert f"resuming at {statuses[0]['offset']}" in done.stderr.decode()
    assert run(store, "get", digest).stdout == data


def test_ctrl_c_on_stdin_without_expected_says_how_to_resume(store: str) -> None:
    line = interrupt_ingest(store, "plain", b"some bytes")
    assert "--expected" in line


def test_default_store_is_under_the_user_data_dir(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    empty = run(None, "ls", "-q", env=env)
    assert empty.stdout == b"" and not (tmp_path / "xdg").exists()
    done = run(None, "ingest", "x", stdin=b"hello", env=env)
    assert done.stdout.decode().strip() == HELLO
    assert (tmp_path / "xdg" / "cargohold" / "store" / "blobs" / "sha256").is_dir()
    assert run(None, "ls", "-q", env=env).stdout.decode().split() == [HELLO]


FUZZ_WORDS = [
    *("ingest", "get", "info", "ls", "label", "rm", "active", "abort", "--json", "--store"),
    *("-o", "--expected", "--size", "--label", "-q", "--no-verify", "-", "", HELLO, MISSING),
    *("sha256:zz", "k=v", "k=", "=v", "labels.a==", 'labels."x', "/nonexistent", "/tmp"),
    *("/dev/null", "ref", "x" * 5000, "\udcff", "memory://x", "s3://", "file://rel", "-1"),
    *("99999999999999999999", "--version", "digest~=/(/", "file:///dev/null/x", "gs://"),
]


def test_fuzzed_command_lines_fail_in_one_line_each(file_store: str, tmp_path: Path) -> None:
    """Random command lines: never a traceback, a known exit status, every line of stderr one
    of ours (rm/abort print one per failed name)."""
    run(file_store, "ingest", "seed", stdin=b"hello")
    rng = random.Random(11)
    for _ in range(40):
        args = [rng.choice(FUZZ_WORDS) for _ in range(rng.randint(1, 5))]
        if "--help" in args:
            continue
        done = run(file_store, *args, stdin=b"data", check=False)
        err = done.stderr.decode(errors="replace")
        assert done.returncode in (0, 1, 2), (args, err)
        assert "Traceback" not in err, (args, err)
        for line in err.splitlines():
            if line.strip() and done.returncode:
                assert line.startswith("cargohold: ") or line.startswith('{"error"'), (args, err)


def test_ctrl_c_landing_in_a_weakref_callback_still_stops_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python cannot raise from a callback it runs by itself (a weakref callback, a __del__):
    a Ctrl-C that lands there would be printed as "Exception ignored" and lost. The CLI
    delivers it again, so the command still stops with the interruption's status."""
    import weakref

    from cargohold import cli as cli_module

    def command(**_kwargs: object) -> int:
        class Thing:
            pass

        thing = Thing()
        alive = weakref.ref(thing, lambda _ref: signal.raise_signal(signal.SIGINT))
        del thing  # the callback runs here, and the SIGINT's KeyboardInterrupt inside it
        assert alive() is None
        for _ in range(500):  # the interruption must come out somewhere in here
            time.sleep(0.01)
        return 0

    monkeypatch.setattr(cli_module.cli, "main", command)
    previous = signal.getsignal(signal.SIGINT)
    try:
        code = cli_module.run(["ls"])
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err
    assert code == 130, err
    assert "Exception ignored" not in err and "Traceback" not in err
