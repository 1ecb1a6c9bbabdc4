"""The saved hash state: Go's portable encoding, versioned, checked, never trusted blindly.

The golden vectors below were produced by Go's ``crypto/sha256`` and ``crypto/sha512``
``MarshalBinary`` for the first N bytes of ``INPUT``; they pin the format (a state saved at a
known offset of a known input resumes to the known digest, on any host).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

import cargohold
from cargohold import InvalidArgumentError
from cargohold.digests import (
    ALGORITHMS,
    _native_from_portable,
    hash_state_supported,
    new_hasher,
    state_length,
)
from cargohold.ingest.state import decode_state, encode_state

INPUT = bytes((i * 7 + 3) & 0xFF for i in range(300))
GOLDEN = {
    ("sha256", 0): (
        "736861036a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000"
    ),
    ("sha512", 0): (
        "736861076a09e667f3bcc908bb67ae8584caa73b3c6ef372fe94f82ba54ff53a5f1d36f1510e527fade6"
        "82d19b05688c2b3e6c1f1f83d9abfb41bd6b5be0cd19137e217900000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000"
    ),
    ("sha256", 55): (
        "736861036a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19030a11181f26"
        "2d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d141b222930373e454c"
        "535a61686f767d0000000000000000000000000000000037"
    ),
    ("sha256", 64): (
        "73686103efd29b436f63eaf244f598951fbb7c8f2a517b27d2015d2951958d1b5d12bf47000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000040"
    ),
    ("sha256", 100): (
        "73686103efd29b436f63eaf244f598951fbb7c8f2a517b27d2015d2951958d1b5d12bf47c3cad1d8dfe6"
        "edf4fb020910171e252c333a41484f565d646b727980878e959ca3aab1b8000000000000000000000000"
        "000000000000000000000000000000000000000000000064"
    ),
    ("sha512", 128): (
        "7368610796a86b5c40ba44cd212db43934134ab6a115683b2c48d6a4d0700675e841e8182def191d2492"
        "7d3be900f80af8ce3f9d80206ad24b8615b76a27b339440dc33b00000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000080"
    ),
    ("sha512", 200): (
        "7368610796a86b5c40ba44cd212db43934134ab6a115683b2c48d6a4d0700675e841e8182def191d2492"
        "7d3be900f80af8ce3f9d80206ad24b8615b76a27b339440dc33b838a91989fa6adb4bbc2c9d0d7dee5ec"
        "f3fa01080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3dae1e8eff6fd040b12"
        "1920272e353c434a51585f666d7400000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000000000c8"
    ),
    ("sha256", 300): (
        "73686103401999a31ffb88eb4f954f58f7394dcc0978c87307d3f97dd2830598aae1204f030a11181f26"
        "2d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d141b22293000000000"
        "00000000000000000000000000000000000000000000012c"
    ),
}

needs_state = pytest.mark.skipif(
    not hash_state_supported(), reason="libcrypto unavailable: no exportable hash state"
)


@needs_state
@pytest.mark.parametrize(("algorithm", "offset"), sorted(GOLDEN))
def test_state_matches_gos_encoding(algorithm: str, offset: int) -> None:
    hasher = new_hasher(algorithm)
    hasher.update(INPUT[:offset])
    state = hasher.state()
    assert state is not None
    assert state.hex() == GOLDEN[(algorithm, offset)]
    assert state_length(algorithm, state) == offset


@needs_state
@pytest.mark.parametrize(("algorithm", "offset"), sorted(GOLDEN))
def test_a_golden_state_resumes_to_the_right_digest(algorithm: str, offset: int) -> None:
    resumed = new_hasher(algorithm, bytes.fromhex(GOLDEN[(algorithm, offset)]))
    resumed.update(INPUT[offset:])
    assert resumed.hexdigest() == hashlib.new(algorithm, INPUT).hexdigest()


def _short(s: bytes) -> bytes:
    return s[:-1]


def _long(s: bytes) -> bytes:
    return s + b"\0"


def _bad_magic(s: bytes) -> bytes:
    return b"shb" + s[3:]


def _other_magic(s: bytes) -> bytes:
    return b"sha\x07" + s[4:]


def _dirty_padding(s: bytes) -> bytes:
    # 100 bytes hashed: 36 in the partial block, which starts at byte 36 of the state.
    return s[: 36 + 40] + b"\x01" + s[36 + 41 :]


@pytest.mark.parametrize("mutate", [_short, _long, _bad_magic, _other_magic, _dirty_padding])
def test_malformed_states_are_rejected(mutate: Callable[[bytes], bytes]) -> None:
    bad = mutate(bytes.fromhex(GOLDEN[("sha256", 100)]))
    with pytest.raises(InvalidArgumentError):
        state_length("sha256", bad)
    if hash_state_supported():
        with pytest.raises(InvalidArgumentError):
            new_hasher("sha256", bad)


def _half_written(store: cargohold.Store, ref: str, data: bytes) -> None:
    with store.writer(ref) as writer:
        writer.write(data[: len(data) // 2])


def _state_key(store: cargohold.Store, ref: str) -> str:
    return store.layout.state_key(ref)


def _rewrite_record(store: cargohold.Store, ref: str, **changes: object) -> None:
    key = _state_key(store, ref)
    record, tail = decode_state(store.driver.get(key))
    for name, value in changes.items():
        setattr(record, name, value)
    store.driver.put(key, encode_state(record, tail))


def _finish(store: cargohold.Store, ref: str, data: bytes) -> tuple[int, str | None]:
    with store.writer(ref) as writer:
        offset = writer.status().offset
        reason = writer.restart_reason
        writer.write(data[offset:])
        writer.commit(len(data), "")
    with store.reader_at(f"sha256:{hashlib.sha256(data).hexdigest()}") as reader:
        assert reader.read_at(0, len(data)) == data
    return offset, reason


@needs_state
def test_a_record_of_the_previous_format_still_resumes() -> None:
    data = os.urandom(3000)
    with cargohold.open_store("memory://legacy-format/s") as store:
        _half_written(store, "r", data)
        record, _ = decode_state(store.driver.get(_state_key(store, "r")))
        assert record.hash_state is not None and record.hash_state.startswith("v2:")
        portable = bytes.fromhex(record.hash_state[3:])
        native = _native_from_portable(ALGORITHMS["sha256"], portable)  # what format 1 saved
        _rewrite_record(store, "r", hash_state=native.hex())
        assert _finish(store, "r", data) == (1500, None)


@needs_state
@pytest.mark.parametrize(
    "hash_state",
    [
        "v9:00",  # a future format
        "v2:zz",  # not hex
        "00" * 112,  # a format-1 context that does not check out
    ],
)
def test_an_unusable_state_restarts_from_zero(hash_state: str) -> None:
    data = os.urandom(3000)
    with cargohold.open_store(f"memory://unusable-{len(hash_state)}-{hash_state[:2]}/s") as store:
        _half_written(store, "r", data)
        _rewrite_record(store, "r", hash_state=hash_state)
        offset, reason = _finish(store, "r", data)
        assert offset == 0
        assert reason is not None and "hash state" in reason


@needs_state
def test_a_state_that_covers_other_bytes_than_the_offset_is_never_trusted() -> None:
    data = os.urandom(3000)
    with cargohold.open_store("memory://offset-mismatch/s") as store:
        _half_written(store, "r", data)
        hasher = new_hasher("sha256")
        hasher.update(data[:1400])  # a state 100 bytes behind the record's offset
        state = hasher.state()
        assert state is not None
        _rewrite_record(store, "r", hash_state="v2:" + state.hex())
        offset, reason = _finish(store, "r", data)
        assert offset == 0
        assert reason is not None and "1400" in reason


_FALLBACK = """
import hashlib, os, cargohold
from cargohold.digests import hash_state_supported
assert not hash_state_supported()
data = os.urandom(5000)
with cargohold.open_store("memory://fallback/s") as store:
    with store.writer("r") as writer:
        writer.write(data[:2000])
    with store.writer("r") as writer:
        assert writer.status().offset == 0, writer.status()
        assert "hash state" in writer.restart_reason, writer.restart_reason
        writer.write(data)
        writer.commit(len(data), "")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with store.reader_at(digest) as reader:
        assert reader.read_at(0, len(data)) == data
print("fallback ok")
"""


@pytest.mark.parametrize("how", ["switched off", "no libcrypto"])
def test_without_libcrypto_ingestions_work_and_resumes_restart(how: str) -> None:
    env = dict(os.environ)
    code = _FALLBACK
    if how == "switched off":
        env["CARGOHOLD_HASH_STATE"] = "off"
    else:  # libcrypto cannot be found at all
        code = "import ctypes.util\nctypes.util.find_library = lambda name: None\n" + code
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "fallback ok" in done.stdout
