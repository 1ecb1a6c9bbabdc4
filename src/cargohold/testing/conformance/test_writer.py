"""Ingestion: writers, status, resume, truncate, commit (CONTRACT.md "Writing")."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cargohold import (
    AlreadyExistsError,
    Descriptor,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    Store,
    UnavailableError,
)

from ..helpers import digest_of, random_bytes, read_all


@pytest.mark.parametrize("with_size", [False, True])
@pytest.mark.parametrize("with_digest", [False, True])
def test_writer_variants_status_and_running_digest(
    cstore: Store, with_size: bool, with_digest: bool
) -> None:
    data = random_bytes(3 * cstore.part_size + 123, seed=1)
    desc = Descriptor(
        digest=digest_of(data) if with_digest else "", size=len(data) if with_size else 0
    )
    writer = cstore.writer("variant", desc)
    status = writer.status()
    assert (status.ref, status.offset) == ("variant", 0)
    assert status.total == (len(data) if with_size else 0)
    assert status.expected == (digest_of(data) if with_digest else "")
    assert status.started_at.tzinfo is not None
    assert writer.digest() == digest_of(b"")
    started = status.started_at
    step = cstore.part_size // 2 + 7
    written = 0
    for start in range(0, len(data), step):
        chunk = data[start : start + step]
        assert writer.write(chunk) == len(chunk)
        written += len(chunk)
        status = writer.status()
        assert status.offset == written
        assert status.started_at == started
        assert status.updated_at >= started
        assert writer.digest() == digest_of(data[:written])
    assert cstore.status("variant").offset == written
    writer.commit(len(data), digest_of(data))
    assert read_all(cstore, digest_of(data)) == data
    info = cstore.info(digest_of(data))
    assert info.size == len(data)
    offset = info.created_at.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    with pytest.raises(NotFoundError):
        cstore.status("variant")
    assert cstore.list_statuses() == []


def _sizes(part: int) -> list[int]:
    return [0, 1, part - 1, part, part + 1, 3 * part, 3 * part + 17]


@pytest.mark.parametrize("which", range(7))
def test_sizes_that_matter_for_object_stores(cstore: Store, which: int) -> None:
    size = _sizes(cstore.part_size)[which]
    data = random_bytes(size, seed=size)
    with cstore.writer(f"size-{size}") as writer:
        writer.write(data)
        writer.commit(size, digest_of(data))
    assert cstore.info(digest_of(data)).size == size
    assert read_all(cstore, digest_of(data)) == data


def test_many_tiny_writes_into_a_multipart_blob(cstore: Store) -> None:
    data = random_bytes(2 * cstore.part_size + 999, seed=5)
    with cstore.writer("tiny") as writer:
        step = 997
        for start in range(0, len(data), step):
            writer.write(data[start : start + step])
        writer.commit(len(data), digest_of(data))
    assert read_all(cstore, digest_of(data)) == data


def test_one_big_write_and_zero_length_writes(cstore: Store) -> None:
    data = random_bytes(5 * cstore.part_size + 3, seed=6)
    with cstore.writer("big") as writer:
        assert writer.write(b"") == 0
        assert writer.write(memoryview(data)) == len(data)
        assert writer.write(bytearray()) == 0
        writer.commit()
    assert read_all(cstore, digest_of(data)) == data


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("parts", [0.5, 2.5])
def test_resume_after_close(cstore: Store, fraction: float, parts: float) -> None:
    data = random_bytes(int(cstore.part_size * parts), seed=int(fraction * 10) + 100)
    cut = int(len(data) * fraction)
    writer = cstore.writer("resume", Descriptor(digest=digest_of(data), size=len(data)))
    writer.write(data[:cut])
    before = writer.status()
    digest_before = writer.digest()
    writer.close()
    writer.close()  # closing twice is harmless
    assert cstore.status("resume") == before
    with cstore.writer("resume") as again:
        assert again.status() == before
        assert again.digest() == digest_before
        again.write(data[cut:])
        again.commit(len(data), digest_of(data))
    assert read_all(cstore, digest_of(data)) == data


def test_resume_from_a_second_store_object(cstore: Store, cargohold_store_url: str) -> None:
    from ..helpers import open_small

    data = random_bytes(2 * cstore.part_size + 11, seed=8)
    writer = cstore.writer("second")
    writer.write(data[: cstore.part_size + 5])
    status = writer.status()
    writer.close()
    other = open_small(cargohold_store_url)
    try:
        with other.writer("second") as again:
            assert again.status() == status
            again.write(data[cstore.part_size + 5 :])
            again.commit(len(data), digest_of(data))
    finally:
        other.close()
    assert read_all(cstore, digest_of(data)) == data


def test_reopen_with_other_size_or_digest_restarts(cstore: Store) -> None:
    writer = cstore.writer("restart", Descriptor(size=100))
    writer.write(b"x" * 50)
    writer.close()
    with cstore.writer("restart", Descriptor(size=200)) as again:
        assert again.status().offset == 0
        assert again.status().total == 200
        assert again.digest() == digest_of(b"")
    data = b"y" * 10
    with cstore.writer("restart", Descriptor(digest=digest_of(data))) as again:
        assert again.status().offset == 0
        assert again.status().expected == digest_of(data)
        again.write(data)
        again.commit()
    assert cstore.info(digest_of(data)).size == 10


def test_truncate_zero_restarts_and_keeps_started_at(cstore: Store) -> None:
    writer = cstore.writer("trunc")
    started = writer.status().started_at
    writer.write(random_bytes(cstore.part_size * 2 + 1, seed=9))
    writer.truncate(0)
    assert writer.status().offset == 0
    assert writer.status().started_at == started
    assert writer.digest() == digest_of(b"")
    with pytest.raises(InvalidArgumentError):
        writer.truncate(-1)
    data = b"after truncate"
    writer.write(data)
    writer.commit(len(data), digest_of(data))
    assert read_all(cstore, digest_of(data)) == data


def test_commit_wrong_size_or_digest_keeps_ingestion(cstore: Store) -> None:
    data = random_bytes(cstore.part_size + 10, seed=10)
    writer = cstore.writer("wrong")
    writer.write(data[:-10])
    with pytest.raises(FailedPreconditionError):
        writer.commit(len(data), digest_of(data))
    with pytest.raises(FailedPreconditionError):
        writer.write(b"closed")  # commit always closes
    assert cstore.status("wrong").offset == len(data) - 10
    with pytest.raises(NotFoundError):
        cstore.info(digest_of(data))
    with cstore.writer("wrong") as again:
        again.write(data[-10:])
        with pytest.raises(FailedPreconditionError):
            again.commit(0, digest_of(b"something else"))
    with cstore.writer("wrong") as again:
        assert again.status().offset == len(data)
        again.commit(len(data), digest_of(data))
    assert read_all(cstore, digest_of(data)) == data


def test_commit_uses_expected_from_the_descriptor(cstore: Store) -> None:
    writer = cstore.writer("desc-expected", Descriptor(digest=digest_of(b"right")))
    writer.write(b"wrong")
    with pytest.raises(FailedPreconditionError):
        writer.commit()
    with cstore.writer("desc-expected") as writer:
        writer.truncate(0)
        writer.write(b"right")
        writer.commit()
    assert cstore.info(digest_of(b"right")).size == 5


def test_commit_of_existing_blob_is_already_exists_and_removes_ingestion(
    cstore: Store, ingest: Callable[..., str]
) -> None:
    data = random_bytes(cstore.part_size + 1, seed=11)
    digest = ingest(data)
    with pytest.raises(AlreadyExistsError):
        cstore.writer("again", Descriptor(digest=digest))
    writer = cstore.writer("again-no-desc")
    writer.write(data)
    with pytest.raises(AlreadyExistsError):
        writer.commit(len(data), digest)
    with pytest.raises(NotFoundError):
        cstore.status("again-no-desc")
    assert read_all(cstore, digest) == data


@pytest.mark.cargohold_leaves("ingestion")
def test_second_writer_on_open_ref_is_unavailable(cstore: Store) -> None:
    first = cstore.writer("locked")
    with pytest.raises(UnavailableError):
        cstore.writer("locked")
    first.close()
    with cstore.writer("locked") as second:
        second.write(b"ok")
    failed = cstore.writer("locked")
    with pytest.raises(FailedPreconditionError):
        failed.commit(1)  # wrong size: a failed commit still releases the ref
    cstore.writer("locked").close()


@pytest.mark.cargohold_leaves("ingestion")
def test_aborted_writer_fails_next_write_and_commit(cstore: Store) -> None:
    writer = cstore.writer("aborted")
    writer.write(b"abc")
    cstore.abort("aborted")
    with pytest.raises(FailedPreconditionError):
        writer.write(b"more")
    with pytest.raises(FailedPreconditionError):
        writer.commit()
    writer.close()  # a no-op
    with pytest.raises(NotFoundError):
        cstore.status("aborted")
    with cstore.writer("aborted") as fresh:
        assert fresh.status().offset == 0


@pytest.mark.cargohold_leaves("ingestion")
def test_writer_context_manager_closes_without_committing(cstore: Store) -> None:
    with cstore.writer("ctx") as writer:
        writer.write(b"kept")
    assert cstore.status("ctx").offset == 4
    assert list(cstore.walk()) == []


def test_sha512_ingestion(cstore: Store) -> None:
    data = random_bytes(cstore.part_size + 5, seed=12)
    expected = digest_of(data, "sha512")
    writer = cstore.writer("sha512", Descriptor(digest=expected, size=len(data)))
    writer.write(data[:100])
    writer.close()
    with cstore.writer("sha512") as writer:
        writer.write(data[100:])
        assert writer.digest() == expected
        writer.commit(len(data), expected)
    assert read_all(cstore, expected) == data


def test_refs_are_opaque_strings(cstore: Store) -> None:
    refs = ["a/b/c", "../../etc/passwd", "with\x00nul", "x" * 4096, "ünïcödé ref", "."]
    for index, ref in enumerate(refs):
        data = f"content {index}".encode()
        with cstore.writer(ref) as writer:
            writer.write(data)
        assert cstore.status(ref).ref == ref
    assert sorted(s.ref for s in cstore.list_statuses()) == sorted(refs)
    for ref in refs:
        cstore.abort(ref)
    assert cstore.list_statuses() == []


def test_abort_from_another_store_object_makes_close_a_no_op(
    cstore: Store, cargohold_store_url: str
) -> None:
    from ..helpers import open_small

    writer = cstore.writer("abort-elsewhere")
    writer.write(b"abc")
    other = open_small(cargohold_store_url)
    try:
        other.abort("abort-elsewhere")
    finally:
        other.close()
    writer.close()
    with pytest.raises(NotFoundError):
        cstore.status("abort-elsewhere")


def test_commit_under_another_digest_than_started_with_is_refused(cstore: Store) -> None:
    started_for = random_bytes(2 * cstore.part_size + 3, seed=13)
    actual = random_bytes(2 * cstore.part_size + 3, seed=14)
    writer = cstore.writer("switched", Descriptor(digest=digest_of(started_for)))
    writer.write(actual)
    with pytest.raises(FailedPreconditionError):
        writer.commit(len(actual), digest_of(actual))
    for digest in (digest_of(started_for), digest_of(actual)):
        with pytest.raises(NotFoundError):
            cstore.info(digest)
    with cstore.writer("switched") as again:
        again.truncate(0)
        again.write(started_for)
        again.commit(len(started_for), digest_of(started_for))
    assert read_all(cstore, digest_of(started_for)) == started_for
