"""The library's entry points with hostile input: store URLs and options, refs, digests, labels,
filters. Each call ends in success or a ``ContentError`` subclass, within a deadline, and leaves
the seeded blobs and the seeded ingestion as they were.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cargohold
from cargohold import Descriptor, Info
from cargohold.errors import ContentError, InvalidArgumentError
from cargohold.store import Store

from . import strategies as hs
from .conftest import (
    SEED_BLOBS,
    SEED_REF,
    check_seeded,
    fuzz_settings,
    seed_store,
    sha,
)

CALL_DEADLINE = 20.0
_T = TypeVar("_T")
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fuzz-call")


def typed(fn: Callable[[], _T]) -> _T | ContentError:
    """Run ``fn`` with a deadline: its result or the ContentError it raised; anything else fails."""
    future = _pool.submit(fn)
    try:
        return future.result(timeout=CALL_DEADLINE)
    except ContentError as exc:
        return exc
    except FutureTimeout:
        pytest.fail(f"the call did not return within {CALL_DEADLINE} s")


# Values of the wrong type, as a careless caller might pass them.
wrong_types = st.sampled_from([None, 1, -1, 1.5, b"bytes", ["list"], {"k": "v"}, object()])
surrogates = st.sampled_from(["\udcff", "a\ud800", "ref-\udce2\udc82"])
lib_refs = st.one_of(hs.refs, surrogates, wrong_types)
lib_digests = st.one_of(hs.target_digests, surrogates, wrong_types)
hashable_wrong_types = st.sampled_from([None, 1, -1, 1.5, b"bytes", ("tuple",)])
lib_labels = st.one_of(
    hs.labels,
    st.dictionaries(
        st.one_of(hs.plain_text, surrogates, hashable_wrong_types), wrong_types, max_size=2
    ),
    st.dictionaries(surrogates, hs.plain_text, max_size=2),
    wrong_types,
)
lib_filters = st.lists(st.one_of(hs.filter_strings, surrogates, wrong_types), max_size=4)


@dataclass
class Seeded:
    """A store with seeded blobs and one seeded, open ingestion."""

    store: Store

    def check(self) -> None:
        """The seeded content is exactly as seeded."""
        check_seeded(self.store)


@pytest.fixture(scope="module", params=["memory", "file"])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """A seeded store on memory:// or file://, shared by a module's tests."""
    if request.param == "memory":
        url = f"memory://fuzz-{uuid.uuid4().hex}"
    else:
        url = f"file://{tmp_path_factory.mktemp('fuzz-lib') / 'store'}"
    store = cargohold.open_store(url)
    try:
        seed_store(store)
        seeded = Seeded(store)
        seeded.check()
        yield seeded
        seeded.check()
    finally:
        store.close()


@fuzz_settings
@given(ref=lib_refs, digest=lib_digests, size=hs.hostile_ints)
def test_writer_status_abort(seeded: Seeded, ref: Any, digest: Any, size: int) -> None:
    store = seeded.store

    def open_and_close() -> None:
        with store.writer(ref, Descriptor(digest=digest, size=size)) as writer:
            writer.write(b"fuzz")

    typed(open_and_close)
    typed(lambda: store.status(ref))
    typed(lambda: store.abort(ref))
    seeded.check()


@fuzz_settings
@given(
    digest=lib_digests,
    offset=hs.hostile_ints,
    length=hs.hostile_ints,
)
def test_info_read_delete(seeded: Seeded, digest: Any, offset: int, length: int) -> None:
    store = seeded.store
    typed(lambda: store.info(digest))

    def read() -> bytes:
        with store.reader_at(digest) as reader:
            return reader.read_at(offset, min(length, 1 << 20))

    typed(read)
    typed(lambda: store.delete(digest))
    seeded.check()


@fuzz_settings
@given(data=st.binary(max_size=32), offset=hs.hostile_ints, length=hs.hostile_ints)
def test_read_at_any_range(seeded: Seeded, data: bytes, offset: int, length: int) -> None:
    digest = sha(data)

    def commit() -> None:
        with seeded.store.writer(f"range/{digest}") as writer:
            writer.write(data)
            writer.commit(len(data), digest)

    typed(commit)  # AlreadyExists once the same data came up before

    def read() -> bytes:
        with seeded.store.reader_at(digest) as reader:
            return reader.read_at(offset, min(length, 1 << 20))

    result = typed(read)
    if isinstance(result, bytes):
        assert offset >= 0 and length >= 0
        assert result == data[offset : offset + length]


@fuzz_settings
@given(
    data=st.binary(max_size=16),
    labels=lib_labels,
    update=lib_labels,
    paths=st.lists(st.one_of(hs.field_paths, wrong_types), max_size=3),
)
def test_labels_on_commit_and_update(
    seeded: Seeded, data: bytes, labels: Any, update: Any, paths: list[Any]
) -> None:
    store = seeded.store
    digest = sha(b"labels " + data)

    def commit() -> None:
        with store.writer(f"labels/{digest}") as writer:
            writer.write(b"labels " + data)
            writer.commit(labels=labels)

    typed(commit)
    before = typed(lambda: store.info(digest))
    if isinstance(before, Info):
        after = typed(
            lambda: store.update(
                Info(digest, before.size, before.created_at, before.updated_at, update), *paths
            )
        )
        if isinstance(after, ContentError):
            assert store.info(digest).labels == before.labels  # a refused update changes nothing
    seeded.check()


@fuzz_settings
@given(filters=lib_filters)
def test_walk_and_list_statuses(seeded: Seeded, filters: list[Any]) -> None:
    walked = typed(lambda: list(seeded.store.walk(*filters)))
    statuses = typed(lambda: seeded.store.list_statuses(*filters))
    if not filters:
        assert isinstance(walked, list) and isinstance(statuses, list)
        assert {sha(d) for d, _ in SEED_BLOBS.values()} <= {i.digest for i in walked}
        assert SEED_REF in {s.ref for s in statuses}
    seeded.check()


# ---- store URLs and options ---------------------------------------------------------------------

OPTION_NAMES = ["lease_timeout", "part_size", "concurrency", "read_streams", "min_part_size"]
OPTION_NAMES += ["fsync", "unknown", ""]
option_values = st.one_of(
    hs.hostile_ints,
    st.sampled_from(["", "0", "-1", "1e3", "nan", "inf", "-inf", "1.5", "x", "10" * 30]),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 1e300, 2.5]),
    wrong_types,
)
options = st.dictionaries(st.sampled_from(OPTION_NAMES), option_values, max_size=3)
# Schemes whose opening touches nothing outside this machine's temporary files.
url_tails = st.one_of(
    hs.plain_text, hs.special_text, st.sampled_from(["[", "a]b", "x[/y", "%00", "%ff", "a#b"])
)


@fuzz_settings
@given(
    scheme=st.sampled_from(["memory://", "file://", "", "unknown://", "memory:", "MEMORY://"]),
    tail=url_tails,
    query=options,
    keywords=options,
)
def test_open_store(
    tmp_path_factory: pytest.TempPathFactory,
    scheme: str,
    tail: str,
    query: dict[str, Any],
    keywords: dict[str, Any],
) -> None:
    if scheme == "file://":  # only ever under a fresh temporary directory
        base = tmp_path_factory.mktemp("open")
        # No way up and out of it, not even percent-encoded ("%2e%2e" is "..").
        tail = tail.replace("..", "__").replace("%2e", "_").replace("%2E", "_")
        tail = str(base / tail.lstrip("/"))
    querystring = "&".join(f"{k}={v}" for k, v in query.items())
    url = scheme + tail + ("?" + querystring if querystring else "")
    opened = typed(lambda: cargohold.open_store(url, **keywords))
    if isinstance(opened, Store):
        opened.close()


@pytest.mark.parametrize(
    ("scheme", "option"),
    [
        ("memory", "part_size"),
        ("memory", "concurrency"),
        ("memory", "read_streams"),
        ("memory", "min_part_size"),
        ("file", "fsync"),
    ],
)
def test_infinite_integer_option_is_invalid_argument(
    tmp_path: Path, scheme: str, option: str
) -> None:
    url = f"file://{tmp_path}/store" if scheme == "file" else "memory://inf"
    with pytest.raises(InvalidArgumentError):
        cargohold.open_store(url, **{option: float("inf")}).close()


@pytest.mark.parametrize("value", ["nan", float("nan")])
def test_nan_lease_timeout_is_invalid_argument(value: object) -> None:
    with pytest.raises(InvalidArgumentError):
        cargohold.open_store("memory://nan", lease_timeout=value).close()


@pytest.mark.parametrize("name", ["\x00", "%00", "a\x00b"])
def test_file_url_with_nul_is_invalid_argument(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        cargohold.open_store(f"file://{tmp_path}/{name}").close()


@pytest.mark.parametrize("url", ["memory://[", "memory://a]b", "memory://x[/y"])
def test_unbalanced_bracket_in_url_is_invalid_argument(url: str) -> None:
    with pytest.raises(InvalidArgumentError):
        cargohold.open_store(url).close()


def test_file_store_paths_stay_under_their_root(tmp_path: Path) -> None:
    """A hostile ref never names a file outside the store (refs are hashed into keys)."""
    store = cargohold.open_store(f"file://{tmp_path / 'store'}")
    try:
        for ref in ["../../escape", "/etc/passwd", "a/../../b", "..", "\x00"]:
            with store.writer(ref) as writer:
                writer.write(b"x")
    finally:
        store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
