"""The library helpers (write_blob, read_blob, open_blob) on every store kind."""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import cargohold
from cargohold import DataLossError, Descriptor, FailedPreconditionError, NotFoundError, Store
from cargohold.digests import parse_digest
from cargohold.helpers import Progress, copy_blob, open_blob, read_blob, write_blob
from cargohold.testing.helpers import open_small

PART = 64 * 1024


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


class Pipe(io.RawIOBase):
    """A non-seekable source, like stdin."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.fixture
def small(store_url: str) -> Iterator[Store]:
    with open_small(store_url) as opened:
        yield opened


def interrupted(
    store: Store, ref: str, data: bytes, upto: int, desc: Descriptor | None = None
) -> None:
    """An ingestion of ``data`` closed after ``upto`` bytes, as an interrupted run leaves it."""
    with store.writer(ref, desc) as writer:
        writer.write(data[:upto])


def stored(store: Store, digest: str) -> bytes:
    with store.reader_at(digest) as reader:
        return reader.read_at(0, reader.size + 1)


def test_fresh_write_reports_what_it_did(small: Store) -> None:
    data = payload(300_000, 1)
    seen: list[Progress] = []
    result = write_blob(small, "fresh", io.BytesIO(data), labels={"a": "1"}, progress=seen.append)
    assert (result.digest, result.size, result.existed) == (digest_of(data), len(data), False)
    assert (result.resumed_at, result.restarted) == (0, None)
    assert seen[0] == Progress(0, len(data), 0, None) and seen[-1].done == len(data)
    assert stored(small, result.digest) == data
    assert small.info(result.digest).labels == {"a": "1"}


def test_seekable_source_resumes_after_a_close_half_way(small: Store) -> None:
    data = payload(5 * PART + 123, 2)
    interrupted(small, "half", data, 3 * PART + 7)
    offset = small.status("half").offset
    assert offset > 0
    result = write_blob(small, "half", io.BytesIO(data))
    assert result.resumed_at == offset and result.restarted is None
    assert result.digest == digest_of(data) and stored(small, result.digest) == data
    with pytest.raises(NotFoundError):
        small.status("half")


def test_changed_source_restarts_from_zero(small: Store) -> None:
    first, second = payload(4 * PART, 3), payload(4 * PART, 4)
    interrupted(small, "mix", first, 2 * PART)
    result = write_blob(small, "mix", io.BytesIO(second))
    assert result.resumed_at == 0 and result.restarted is not None
    assert "differ" in result.restarted
    assert result.digest == digest_of(second) and stored(small, result.digest) == second


def test_shorter_source_restarts(small: Store) -> None:
    data = payload(3 * PART, 5)
    interrupted(small, "short", data, 2 * PART + 5)
    result = write_blob(small, "short", io.BytesIO(data[:PART]))
    assert result.restarted is not None and "fewer" in result.restarted
    assert stored(small, result.digest) == data[:PART]


def test_pipe_without_expected_restarts(small: Store) -> None:
    data = payload(3 * PART, 6)
    interrupted(small, "pipe", data, PART + 1)
    result = write_blob(small, "pipe", Pipe(data))
    assert result.resumed_at == 0 and result.restarted is not None
    assert "expected" in result.restarted
    assert stored(small, result.digest) == data


def test_pipe_with_expected_resumes(small: Store) -> None:
    data = payload(3 * PART, 7)
    desc = Descriptor(digest=digest_of(data), size=len(data))
    interrupted(small, "pipe-e", data, 2 * PART + 1, desc)
    offset = small.status("pipe-e").offset
    result = write_blob(small, "pipe-e", Pipe(data), expected=desc.digest, size=desc.size)
    assert result.resumed_at == offset > 0 and result.restarted is None
    assert stored(small, result.digest) == data


def test_pipe_with_expected_and_other_bytes_restarts_and_replays(small: Store) -> None:
    data, other = payload(3 * PART, 8), payload(3 * PART, 9)
    interrupted(small, "pipe-x", data, 2 * PART, Descriptor(digest=digest_of(other)))
    result = write_blob(small, "pipe-x", Pipe(other), expected=digest_of(other))
    assert result.resumed_at == 0 and result.restarted is not None
    assert stored(small, result.digest) == other


def test_existing_blob_gets_the_labels_merged(small: Store) -> None:
    data = payload(1000, 10)
    first = write_blob(small, "l1", io.BytesIO(data), labels={"containerd.io/gc.root": "x"})
    assert not first.existed
    again = write_blob(small, "l2", io.BytesIO(data), labels={"kind": "greeting"})
    assert again.existed and again.digest == first.digest and again.size == len(data)
    with_expected = write_blob(
        small, "l3", io.BytesIO(data), expected=first.digest, labels={"more": "1"}
    )
    assert with_expected.existed
    assert small.info(first.digest).labels == {
        "containerd.io/gc.root": "x",
        "kind": "greeting",
        "more": "1",
    }
    assert small.list_statuses() == []


def test_wrong_expected_keeps_the_ingestion(small: Store) -> None:
    data = payload(2 * PART, 11)
    with pytest.raises(FailedPreconditionError):
        write_blob(small, "bad", io.BytesIO(data), expected=digest_of(b"other"))
    assert small.status("bad").offset == len(data)


def make_tar(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def test_verifying_reader_with_tarfile_and_shutil(small: Store, tmp_path: Path) -> None:
    members = {"a.bin": payload(200_000, 12), "b.txt": b"hello"}
    blob = make_tar(members)
    digest = write_blob(small, "tar", io.BytesIO(blob)).digest
    with open_blob(small, digest) as reader, tarfile.open(fileobj=reader, mode="r|*") as tar:
        seen = {}
        for member in tar:
            handle = tar.extractfile(member)
            assert handle is not None
            seen[member.name] = handle.read()
    assert seen == members and reader.verified
    with open_blob(small, digest, chunk_size=4096) as reader, (tmp_path / "c").open("wb") as out:
        shutil.copyfileobj(reader, out)
    assert (tmp_path / "c").read_bytes() == blob and reader.verified
    with open_blob(small, Descriptor(digest=digest, size=len(blob))) as reader:
        reader.seek(-5, os.SEEK_END)
        tail = reader.read()
        reader.seek(0)
        head = reader.read(10)
    assert tail == blob[-5:] and head == blob[:10] and reader.verified
    assert read_blob(small, digest, tmp_path / "d") == len(blob)
    assert (tmp_path / "d").read_bytes() == blob
    with pytest.raises(FailedPreconditionError):
        open_blob(small, Descriptor(digest=digest, size=len(blob) + 1))


def test_seeking_tarfile_across_chunk_boundaries(small: Store) -> None:
    members = {f"m{n}": payload(700 + n * 333, n) for n in range(6)}
    digest = write_blob(small, "plain-tar", io.BytesIO(make_tar(members, "w"))).digest
    with open_blob(small, digest, chunk_size=1000) as reader:
        with tarfile.open(fileobj=reader, mode="r:") as tar:  # seeks; headers straddle chunks
            names = tar.getnames()
            handle = tar.extractfile("m4")
            assert handle is not None and handle.read() == members["m4"]
        assert names == list(members)
    assert reader.verified


def test_empty_blob_is_verified(small: Store) -> None:
    digest = write_blob(small, "empty", io.BytesIO(b"")).digest
    with open_blob(small, digest) as reader:
        assert reader.read() == b""
    assert reader.verified


def corrupt(store: Store, digest: str, data: bytes) -> None:
    """Replace the stored bytes behind the store's back (a driver-level overwrite)."""
    store.driver.put(store.layout.blob_key(parse_digest(digest)), data)


def test_corrupted_blob_raises_data_loss(small: Store, tmp_path: Path) -> None:
    data = payload(3 * PART, 13)
    digest = write_blob(small, "c", io.BytesIO(data)).digest
    damaged = bytearray(data)
    damaged[-1] ^= 0xFF
    corrupt(small, digest, bytes(damaged))
    with pytest.raises(DataLossError), open_blob(small, digest, chunk_size=PART) as reader:
        shutil.copyfileobj(reader, io.BytesIO())
    out = tmp_path / "out"
    out.mkdir()
    target = out / "out.bin"
    target.write_bytes(b"previous")
    with pytest.raises(DataLossError):
        read_blob(small, digest, target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in out.iterdir()] == ["out.bin"]
    unchecked = io.BytesIO()
    read_blob(small, digest, unchecked, verify=False)
    assert unchecked.getvalue() == bytes(damaged)


def test_partial_read_is_checked_when_the_block_ends(small: Store) -> None:
    data = make_tar({"x": payload(3 * PART, 14)})
    digest = write_blob(small, "t", io.BytesIO(data)).digest
    corrupt(small, digest, data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(DataLossError), open_blob(small, digest, chunk_size=PART) as reader:
        reader.read(100)  # stops early; leaving the block reads and checks the rest


def test_truncated_blob_raises_data_loss(small: Store) -> None:
    data = payload(2 * PART, 15)
    digest = write_blob(small, "t2", io.BytesIO(data)).digest
    reader = open_blob(small, digest)
    corrupt(small, digest, data[: PART // 2])
    with pytest.raises(DataLossError), reader:
        reader.read()


def test_copy_between_stores_verifies_and_resumes(small: Store) -> None:
    source = cargohold.open_store(f"memory://{os.urandom(8).hex()}", part_size=PART)
    try:
        data = payload(3 * PART + 9, 16)
        digest = write_blob(source, "s", io.BytesIO(data)).digest
        interrupted(small, "copy-x", data, 2 * PART, Descriptor(digest=digest, size=len(data)))
        result = copy_blob(source, small, digest, ref="copy-x", labels={"from": "memory"})
        assert (result.digest, result.existed) == (digest, False)
        assert result.resumed_at > 0 and result.restarted is None
        assert stored(small, digest) == data and small.info(digest).labels == {"from": "memory"}
        again = copy_blob(source, small, digest, labels={"again": "1"})
        assert again.existed and set(small.info(digest).labels) == {"from", "again"}
        other = payload(PART, 17)
        bad = write_blob(source, "b", io.BytesIO(other)).digest
        corrupt(source, bad, other[:-1] + b"?")
        with pytest.raises(DataLossError):
            copy_blob(source, small, bad)
        with pytest.raises(NotFoundError):
            small.info(bad)
    finally:
        source.close()
