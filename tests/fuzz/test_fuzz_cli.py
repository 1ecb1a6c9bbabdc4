"""The ``cargohold`` command with hostile arguments, as a real process on a seeded file:// store.

Every run must exit 0, 1 (a failure) or 2 (bad usage) within a deadline, report errors as the
CLI's own one-line JSON (never an "internal error" or a traceback), and leave the seeded blobs
and ingestion as they were.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cargohold

from . import strategies as hs
from .conftest import (
    check_seeded,
    fuzz_settings,
    seed_store,
)

CLI_DEADLINE = 60.0


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A seeded file:// store; checked again after the module's tests."""
    url = f"file://{tmp_path_factory.mktemp('fuzz-cli') / 'store'}"
    store = cargohold.open_store(url)
    try:
        seed_store(store)
    finally:
        store.close()
    yield url
    check_seeds(url)


def check_seeds(url: str) -> None:
    """The seeded content is exactly as seeded."""
    store = cargohold.open_store(url)
    try:
        check_seeded(store)
    finally:
        store.close()


# Arguments as a shell would pass them: no NUL (the OS refuses it), undecodable bytes allowed.
def _arg(text: str) -> bool:
    return "\x00" not in text


args = st.one_of(hs.any_text, st.sampled_from(["\udcff", "-", "--", "-x", "--bogus", "=", "k="]))
cli_args = args.filter(_arg)
not_seed_digests = hs.target_digests.filter(_arg)
read_digests = hs.read_digests.filter(_arg)
label_args = st.tuples(hs.plain_text, hs.any_text).map("=".join).filter(_arg)
commands = st.one_of(
    st.tuples(st.just("info"), st.lists(st.one_of(read_digests, cli_args), max_size=2)),
    st.tuples(st.just("get"), st.lists(st.one_of(read_digests, cli_args), max_size=2)),
    st.tuples(st.just("ls"), st.lists(hs.filter_strings.filter(_arg), max_size=3)),
    st.tuples(st.just("active"), st.lists(hs.filter_strings.filter(_arg), max_size=3)),
    st.tuples(
        st.just("label"),
        st.tuples(not_seed_digests, st.lists(label_args, max_size=3)).map(lambda t: [t[0], *t[1]]),
    ),
    st.tuples(st.just("rm"), st.lists(not_seed_digests, max_size=3)),
    st.tuples(st.just("abort"), st.lists(hs.refs.filter(_arg), max_size=3)),
    st.tuples(
        st.just("ingest"),
        st.tuples(
            hs.refs.filter(_arg),
            st.lists(
                st.sampled_from(["--expected", "--size", "--label"]).flatmap(
                    lambda flag: st.tuples(st.just(flag), cli_args)
                ),
                max_size=2,
            ),
        ).map(lambda t: [t[0], "-", *(part for pair in t[1] for part in pair)]),
    ),
)


@fuzz_settings
@given(command=commands, stdin=st.binary(max_size=64))
def test_cli(store_url: str, command: tuple[str, list[str]], stdin: bytes) -> None:
    name, arguments = command
    argv = [sys.executable, "-m", "cargohold", "--json", "--store", store_url, name, *arguments]
    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=CLI_DEADLINE)
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode in (0, 1, 2), stderr
    assert "Traceback" not in stderr
    assert "internal error" not in stderr, stderr
    if done.returncode == 1:  # failures are the CLI's own JSON lines
        for line in filter(None, stderr.splitlines()):
            assert isinstance(json.loads(line), dict), line
    check_seeds(store_url)


def test_cli_store_url_is_checked() -> None:
    """A hostile --store is bad usage (2), never a traceback."""
    for url in ["", "nope://x", "memory", "memory://x?unknown=1", "memory://x?part_size=-1"]:
        argv = [sys.executable, "-m", "cargohold", "--json", "--store", url, "ls"]
        done = subprocess.run(argv, capture_output=True, timeout=CLI_DEADLINE)
        assert done.returncode == 2, done.stderr
        assert b"Traceback" not in done.stderr
