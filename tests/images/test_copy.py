"""``images.copy`` and ``cargohold copy``: between every driver, only what the destination
lacks, children before parents and names last, labels carried, sharding, a SIGKILL then a
rerun, and a rerun with nothing to copy that costs the destination a listing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cargohold
from cargohold import Store
from cargohold.blob_reader import open_blob
from cargohold.errors import DataLossError, InvalidArgumentError, NotFoundError
from cargohold.helpers import write_blob
from cargohold.images import graph
from cargohold.images.copy import CopyProgress, copy, copy_ref, in_shard, parse_shard
from cargohold.images.transfer import read_size
from cargohold.images.verify import verify
from cargohold.ingest import sessions
from cargohold.ingest.context import IngestContext
from tests.conftest import STORE_KINDS

from ._build import build_image, build_index

PAIRS = [("file", "s3"), ("s3", "gcs"), ("gcs", "azure"), ("azure", "file")]
LAYER_LABELS = {"example.com/built-by": "test", "containerd.io/distribution.source.x": "repo"}


def _url(request: pytest.FixtureRequest, kind: str) -> str:
    if kind not in STORE_KINDS:
        pytest.fail(f"store kind {kind} is not configured (CARGOHOLD_TEST_STORES?)")
    url: str = request.getfixturevalue(STORE_KINDS[kind])
    return url


@pytest.fixture
def stores(request: pytest.FixtureRequest) -> Iterator[tuple[Store, Store]]:
    src_kind, dst_kind = request.param
    src = cargohold.open_store(_url(request, src_kind))
    dst = cargohold.open_store(_url(request, dst_kind))
    try:
        yield src, dst
    finally:
        src.close()
        dst.close()


@pytest.fixture
def file_pair(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    src = cargohold.open_store(f"file://{tmp_path / 'src'}")
    dst = cargohold.open_store(f"file://{tmp_path / 'dst'}")
    try:
        yield src, dst
    finally:
        src.close()
        dst.close()


def _blobs(store: Store) -> dict[str, int]:
    return dict(store.list_blobs())


def _names(store: Store) -> dict[str, str]:
    return {item.name: item.target.digest for item in store.names.list()}


@pytest.mark.parametrize("stores", PAIRS, indirect=True, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_copy_named_images_then_all(stores: tuple[Store, Store]) -> None:
    src, dst = stores
    rng = random.Random(7)
    app = build_image(src, rng, layers=(6 * 1024 * 1024 + 5, 3000), name="app:1")
    other = build_image(src, rng, layers=(1000,), name="other:1", layer_labels=LAYER_LABELS)
    platforms = [build_image(src, rng, layers=(2000, 2500), layer_labels=LAYER_LABELS)]
    platforms.append(build_image(src, rng, layers=(100,)))
    index, multi = build_index(src, platforms, name="multi:1")

    summary = copy(src, dst, ["app:1", "multi:1"], concurrency=3)

    wanted = app.blobs | multi
    assert set(_blobs(dst)) == wanted
    assert summary.blobs_copied == len(wanted) and summary.blobs_skipped == 0
    assert summary.bytes_copied == sum(_blobs(src)[d] for d in wanted)
    assert sorted(summary.names_written) == ["app:1", "multi:1"]
    assert _names(dst) == {"app:1": app.manifest.digest, "multi:1": index.digest}
    for digest in wanted:  # the same bytes, verified on the way out, and the same labels
        with open_blob(dst, digest) as reader:
            reader.read()
        assert dst.info(digest).labels == src.info(digest).labels
    assert dst.info(index.digest).labels  # gc labels went along
    assert dst.info(platforms[0].layers[0].digest).labels == LAYER_LABELS

    again = copy(src, dst, None)
    assert set(_blobs(dst)) == set(_blobs(src))
    assert again.blobs_copied == len(other.blobs)
    assert again.blobs_skipped == len(wanted)
    assert again.names_written == ["other:1"]
    assert sorted(again.names_unchanged) == ["app:1", "multi:1"]
    assert dst.info(other.layers[0].digest).labels == LAYER_LABELS
    assert verify(dst).ok


def test_children_before_parents_and_names_last(file_pair: tuple[Store, Store]) -> None:
    """Seen after every blob the copy commits: every manifest and index at the destination
    has all its children there, and no name has been written yet."""
    src, dst = file_pair
    rng = random.Random(11)
    images = [build_image(src, rng, layers=(3000, 4000, 5000)) for _ in range(3)]
    build_index(src, images, name="multi:1")
    build_image(src, rng, layers=(1000, 2000), name="single:1")
    checks: list[int] = []

    def check(progress: CopyProgress) -> None:
        if progress.blobs_done == len(checks):
            return  # a byte count, not a finished blob
        checks.append(progress.blobs_done)
        assert _names(dst) == {}
        here = _blobs(dst)
        for digest in here:
            with open_blob(dst, digest) as reader:
                data = reader.read()
            for child in graph.children("", data):
                assert child.digest in here, f"{digest} is there before its child {child.digest}"

    summary = copy(src, dst, ["multi:1", "single:1"], concurrency=2, progress=check)
    assert summary.blobs_copied == len(checks) == len(_blobs(src))
    assert set(_names(dst)) == {"multi:1", "single:1"}


def test_rerun_with_nothing_to_copy_only_lists(file_store_url: str, s3_store_url: str) -> None:
    with cargohold.open_store(file_store_url) as src, cargohold.open_store(s3_store_url) as dst:
        rng = random.Random(3)
        for i in range(3):
            build_image(src, rng, layers=(1000, 2000), name=f"img{i}:latest")
        copy(src, dst, None)
        dst.driver.reset_calls()
        summary = copy(src, dst, None)
        calls = dict(dst.driver.calls)
    assert summary.blobs_copied == 0 and summary.names_written == []
    assert summary.blobs_skipped == 12 and len(summary.names_unchanged) == 3
    # One listing of blobs/, one of ingest/ (leftovers of a killed copy), and one get of
    # index.json (names only compared, not written, need no etag): no request per blob, no
    # write.
    assert calls == {"list": 2, "get": 1}, calls


def test_shards_together_are_the_whole(file_pair: tuple[Store, Store]) -> None:
    """Leaves are split by digest; manifests and names follow once all their leaves are in."""
    src, dst = file_pair
    rng = random.Random(5)
    big = build_image(src, rng, layers=[500 + i for i in range(16)], name="big:1")
    build_image(src, rng, layers=(10, 20, 30), name="small:1")
    total = _blobs(src)
    leaves = set(total) - {item.target.digest for item in src.names.list()}
    first = copy(src, dst, ["big:1", "small:1"], shard=(0, 2))
    mine = {d for d in leaves if in_shard(d, (0, 2))}
    assert mine and mine != leaves
    assert set(_blobs(dst)) & leaves == mine
    assert first.blobs_other_shards == len(leaves - mine)
    # big:1's 17 leaves are never all in one shard (seeded): its manifest and name wait.
    assert big.manifest.digest not in _blobs(dst)
    assert "big:1" in first.names_pending and "big:1" not in _names(dst)
    assert first.blobs_pending >= 1

    second = copy(src, dst, ["big:1", "small:1"], shard=(1, 2))
    assert set(_blobs(dst)) == set(total)
    assert first.blobs_copied + second.blobs_copied == len(total)
    assert second.names_pending == [] and second.blobs_pending == 0
    assert _names(dst) == _names(src)
    assert sorted(first.names_written + second.names_written) == ["big:1", "small:1"]
    assert verify(dst).ok


def test_parse_shard() -> None:
    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "-1/2", "a/b", "1", "0/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_unknown_name_copies_nothing(file_pair: tuple[Store, Store]) -> None:
    src, dst = file_pair
    build_image(src, random.Random(1), name="app:1")
    with pytest.raises(NotFoundError, match="nope:1"):
        copy(src, dst, ["app:1", "nope:1"])
    assert _blobs(dst) == {}


def test_damaged_source_blob_is_refused(tmp_path: Path, file_pair: tuple[Store, Store]) -> None:
    src, dst = file_pair
    image = build_image(src, random.Random(2), layers=(5000,), name="app:1")
    layer = image.layers[0].digest
    path = tmp_path / "src" / "blobs" / "sha256" / layer.partition(":")[2]
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataLossError, match=layer):
        copy(src, dst, ["app:1"])
    assert layer not in _blobs(dst)
    assert image.manifest.digest not in _blobs(dst)
    assert _names(dst) == {}
    # No bad bytes kept to resume (the manifest's own ingestion, complete but uncommitted
    # while its child failed, may stay: its bytes are right, a rerun commits it).
    assert copy_ref(layer) not in [s.ref for s in dst.list_statuses()]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cargohold", *args]


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(_cli(*args), env=env, capture_output=True, timeout=120, check=False)


def test_cli_kill_then_rerun_copies_only_the_rest(file_store_url: str, s3_store_url: str) -> None:
    """SIGKILL ``cargohold copy`` once a few blobs are at the destination; the same command
    again copies exactly the others, and the name appears only at the end."""
    dst_url = f"{s3_store_url}&lease_timeout=1"
    with cargohold.open_store(file_store_url) as src:
        image = build_image(src, random.Random(9), layers=[1024 * 1024 + i for i in range(14)])
        src.names.set("app:1", image.manifest)
        every = _blobs(src)
    argv = _cli("copy", "--from", file_store_url, "--to", dst_url, "app:1", "--concurrency", "1")
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with cargohold.open_store(s3_store_url) as watch:
            deadline = time.monotonic() + 120
            while len(_blobs(watch)) < 3:
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            os.kill(child.pid, signal.SIGKILL)
            child.communicate(timeout=30)
            before = _blobs(watch)
            assert 3 <= len(before) < len(every)
            assert image.manifest.digest not in before  # the parent comes last
            assert _names(watch) == {}
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    done = subprocess.run([*argv, "--json"], capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert summary["blobs_skipped"] == len(before)
    assert summary["blobs_copied"] == len(every) - len(before)
    assert summary["names_written"] == ["app:1"]
    with cargohold.open_store(s3_store_url) as dst:
        assert _blobs(dst) == every
        assert _names(dst) == {"app:1": image.manifest.digest}
        assert [s.ref for s in dst.list_statuses()] == []
        assert verify(dst).ok


def test_cli_summary_and_usage(file_store_url: str, tmp_path: Path) -> None:
    with cargohold.open_store(file_store_url) as src:
        build_image(src, random.Random(4), name="app:1")
    to = f"file://{tmp_path / 'copy'}"
    done = _run_cli("copy", "--from", file_store_url, "--to", to, "--all")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().startswith("copied 4 blobs")
    assert "1 name written" in done.stdout.decode()
    env = {**os.environ, "CARGOHOLD_STORE": file_store_url}
    again = _run_cli("copy", "--to", to, "app:1", "--json", env=env)
    assert again.returncode == 0, again.stderr.decode()
    assert json.loads(again.stdout)["blobs_skipped"] == 4
    both = _run_cli("copy", "--to", to, "app:1", "--all", env=env)
    assert both.returncode == 2
    assert copy_ref("sha256:" + "a" * 64) == "copy-sha256:" + "a" * 64


def test_half_copied_blob_resumes(file_store_url: str, s3_store_url: str) -> None:
    """A blob whose copy stopped half way (its ingestion ``copy-<digest>`` holds the first
    parts) continues from there instead of starting over."""
    with (
        cargohold.open_store(file_store_url) as src,
        cargohold.open_store(s3_store_url, part_size=5 * 1024 * 1024) as dst,
    ):
        image = build_image(src, random.Random(8), layers=(12 * 1024 * 1024,), name="app:1")
        layer = image.layers[0]
        with open_blob(src, layer.digest) as reader:
            head = reader.read(10 * 1024 * 1024)
        with dst.writer(copy_ref(layer.digest), layer) as writer:
            writer.write(head)  # closed without a commit: the ingestion stays, resumable
        assert dst.status(copy_ref(layer.digest)).offset == len(head)

        summary = copy(src, dst, ["app:1"])
        assert summary.resumed == 1 and summary.blobs_copied == 3
        assert dst.list_statuses() == []
        with open_blob(dst, layer.digest) as reader:
            assert len(reader.read()) == layer.size


def test_name_pointing_at_nothing_is_skipped(file_pair: tuple[Store, Store]) -> None:
    src, dst = file_pair
    rng = random.Random(12)
    app = build_image(src, rng, name="app:1")
    gone = build_image(src, rng, name="gone:1")
    src.delete(gone.manifest.digest)
    summary = copy(src, dst, None)
    assert summary.names_written == ["app:1"] and summary.names_skipped == ["gone:1"]
    assert gone.manifest.digest in summary.missing_in_source
    assert set(_blobs(dst)) == set(_blobs(src)) and _names(dst) == {"app:1": app.manifest.digest}


def test_resumed_ingestion_with_wrong_bytes_is_redone(file_pair: tuple[Store, Store]) -> None:
    """Resumed bytes are trusted up to the commit's digest check; when it fails, the blob is
    copied again from zero (once), and the copy succeeds."""
    src, dst = file_pair
    image = build_image(src, random.Random(13), layers=(300_000,), name="app:1")
    layer = image.layers[0]
    with dst.writer(copy_ref(layer.digest), layer) as writer:
        writer.write(b"\0" * 100_000)  # not the layer's first bytes
    summary = copy(src, dst, ["app:1"])
    assert summary.blobs_copied == 3 and summary.names_written == ["app:1"]
    with open_blob(dst, layer.digest) as reader:
        assert len(reader.read()) == layer.size
    assert dst.list_statuses() == []


def test_cli_two_shards_at_once_make_the_whole(file_store_url: str, s3_store_url: str) -> None:
    """``--shard 0/2`` and ``--shard 1/2`` run at the same time: every blob is committed by
    exactly one of them, and the names end up written."""
    with cargohold.open_store(file_store_url) as src:
        rng = random.Random(21)
        images = [build_image(src, rng, layers=[2000 + i for i in range(6)]) for _ in range(2)]
        build_index(src, images, name="multi:1")
        build_image(src, rng, layers=(100, 200), name="single:1")
        every, names = _blobs(src), _names(src)
    argv = _cli("copy", "--from", file_store_url, "--to", s3_store_url, "--all", "--json")
    runs = [
        subprocess.Popen(
            [*argv, "--shard", f"{i}/2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for i in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err.decode()
    summaries = [json.loads(out) for out, _err in outputs]
    assert sum(s["blobs_copied"] for s in summaries) == len(every)
    # The later of the two sees every leaf when it lists the destination again, so it
    # copies the manifests and the index (or finds them committed by the other) and writes
    # the names: nothing is left pending for a third run.
    assert set().union(*(s["names_written"] for s in summaries)) == set(names)
    with cargohold.open_store(s3_store_url) as dst:
        assert _blobs(dst) == every
        assert _names(dst) == names
        assert verify(dst).ok


def test_a_rerun_drops_ingestions_a_kill_left_for_committed_blobs(
    file_pair: tuple[Store, Store],
) -> None:
    """A copy killed after a blob's commit but before its ingestion was removed leaves
    ``copy-<digest>`` behind; the next run aborts it. One that a live copier holds is left."""
    src, dst = file_pair
    image = build_image(src, random.Random(12), name="app:1")
    copy(src, dst, ["app:1"])
    layers = [d.digest for d in image.layers]
    for digest in layers:  # as a killed copy leaves them: some bytes, closed, never removed
        with dst.writer(copy_ref(digest)) as writer:
            writer.write(b"partial")
    held = dst.writer(copy_ref(layers[0]))  # a copier still at work on this one
    try:
        summary = copy(src, dst, ["app:1"])
        assert summary.blobs_copied == 0
        assert [s.ref for s in dst.list_statuses()] == [copy_ref(layers[0])]
    finally:
        held.close()
        dst.abort(copy_ref(layers[0]))


def test_read_size_is_the_destination_part_unless_it_multiplies_source_gets() -> None:
    mib = 1024 * 1024
    assert read_size(16 * mib, 8 * mib) == 8 * mib  # file:// to a cloud: 2x the source's gets
    assert read_size(8 * mib, 16 * mib) == 16 * mib  # larger parts: fewer gets anyway
    assert read_size(16 * mib, 4 * mib) == 4 * mib  # 4x: still worth the copy it saves
    assert read_size(8 * mib, 256 * 1024) == 8 * mib  # memory://'s small parts: 32x, no


def test_copy_reads_whole_parts_in_one_get_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """file:// (16 MiB windows by default) to a store of 4 MiB parts: the source's layer is
    read in 4 MiB ranged gets, each handed to the writer as one part, and the copy is whole."""
    mib = 1024 * 1024
    with (
        cargohold.open_store(f"file://{tmp_path / 'src'}") as src,
        cargohold.open_store(f"file://{tmp_path / 'dst'}", part_size=4 * mib) as dst,
    ):
        image = build_image(src, random.Random(21), layers=(10 * mib,), name="app:1")
        layer = image.layers[0]
        gets: list[tuple[int, int]] = []
        inner = src.driver.inner
        get_range = inner.get_range

        def counted(key: str, offset: int, length: int) -> bytes:
            if key.endswith(layer.digest.partition(":")[2]):
                gets.append((offset, length))
            return get_range(key, offset, length)

        monkeypatch.setattr(inner, "get_range", counted)
        copy(src, dst, ["app:1"])
        assert sorted(gets) == [(0, 4 * mib), (4 * mib, 4 * mib), (8 * mib, 2 * mib)]
        with open_blob(dst, layer.digest) as reader:
            assert "sha256:" + hashlib.sha256(reader.read()).hexdigest() == layer.digest
        assert verify(dst).ok


def test_reader_window_is_checked_and_used(file_store_url: str) -> None:
    mib = 1024 * 1024
    with cargohold.open_store(file_store_url) as store:
        data = random.Random(5).randbytes(3 * mib)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        write_blob(store, "w", io.BytesIO(data), expected=digest)
        with pytest.raises(InvalidArgumentError):
            store.reader_at(digest, window=0)
        before = store.driver.calls["get_range"]
        with store.reader_at(digest, window=mib) as reader:
            pieces = [reader.read_at(i * mib, mib) for i in range(3)]
        assert b"".join(pieces) == data
        assert store.driver.calls["get_range"] - before == 3


def test_reader_given_the_size_skips_the_head(file_store_url: str) -> None:
    with cargohold.open_store(file_store_url) as store:
        data = random.Random(6).randbytes(100_000)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        write_blob(store, "s", io.BytesIO(data), expected=digest)
        with pytest.raises(InvalidArgumentError):
            store.reader_at(digest, size=-1)
        store.driver.reset_calls()
        with store.reader_at(digest, size=len(data)) as reader:
            assert reader.read_at(0, len(data)) == data
        assert store.driver.calls["head"] == 0
        store.delete(digest)
        with store.reader_at(digest, size=len(data)) as reader, pytest.raises(NotFoundError):
            reader.read_at(0, 10)  # a blob deleted meanwhile: found missing by the read


def test_a_manifest_waits_for_its_layers_publication_not_their_clean_up(
    file_pair: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest is published as soon as its layer and config are (never before them),
    while the layer's ingestion records are still being removed."""
    src, dst = file_pair
    image = build_image(src, random.Random(31), layers=(50_000,), name="app:1")
    layer = image.layers[0].digest
    seen: dict[str, bool] = {}
    remove = sessions.remove_ingestion

    def slow_for_the_layer(ctx: IngestContext, ref: str, *args: Any, **kwargs: Any) -> None:
        if ref.endswith(copy_ref(layer)):
            seen["layer published first"] = set(_blobs(dst)) >= {layer}
            time.sleep(1.0)  # the layer is published; its clean-up takes a while
            seen["manifest meanwhile"] = image.manifest.digest in _blobs(dst)
        remove(ctx, ref, *args, **kwargs)

    monkeypatch.setattr(sessions, "remove_ingestion", slow_for_the_layer)
    copy(src, dst, ["app:1"])
    assert seen == {"layer published first": True, "manifest meanwhile": True}
    assert verify(dst).ok and _names(dst) == {"app:1": image.manifest.digest}
