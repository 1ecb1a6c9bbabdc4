"""The wrapper every store puts around its driver: typed capabilities, preconditions."""

from __future__ import annotations

from pathlib import Path

import pytest

from cargohold import AlreadyExistsError, FailedPreconditionError, InvalidArgumentError
from cargohold.drivers.base import CREATE_ONLY, IfMatch, MetadataWriter, PositionalParts
from cargohold.drivers.local import LocalDriver
from cargohold.drivers.memory import MemoryDriver
from cargohold.drivers.wrapper import MeteredDriver


def test_capabilities_follow_the_inner_driver(tmp_path: Path) -> None:
    memory = MeteredDriver(MemoryDriver("wrapper-caps"))
    local = MeteredDriver(LocalDriver(tmp_path))
    assert isinstance(memory, MetadataWriter)
    assert memory.metadata_writer() is memory
    assert memory.positional_parts() is None
    assert not isinstance(memory, PositionalParts)
    assert not hasattr(memory, "upload_part_at")
    assert not isinstance(local, MetadataWriter)
    assert local.metadata_writer() is None
    assert isinstance(local, PositionalParts)
    assert local.positional_parts() is local
    assert not hasattr(local, "set_metadata")
    assert isinstance(memory.inner, MemoryDriver) and isinstance(local.inner, LocalDriver)


def test_no_attribute_falls_through_to_the_driver(tmp_path: Path) -> None:
    wrapped = MeteredDriver(LocalDriver(tmp_path))
    assert wrapped.inner.root == tmp_path
    with pytest.raises(AttributeError):
        wrapped.root  # type: ignore[attr-defined]  # noqa: B018


def test_positioned_parts_on_any_driver(tmp_path: Path) -> None:
    for wrapped in (
        MeteredDriver(MemoryDriver("wrapper-parts")),
        MeteredDriver(LocalDriver(tmp_path)),
    ):
        upload = wrapped.start_upload("k")
        part = wrapped.upload_part_positioned("k", upload, 1, 0, b"bytes")
        wrapped.complete_upload("k", upload, [part], precondition=CREATE_ONLY)
        assert wrapped.get("k") == b"bytes"
        assert wrapped.calls["upload_part"] == 1


def test_preconditions() -> None:
    wrapped = MeteredDriver(MemoryDriver("wrapper-preconditions"))
    etag = wrapped.put("k", b"1", precondition=CREATE_ONLY)
    with pytest.raises(AlreadyExistsError):
        wrapped.put("k", b"2", precondition=CREATE_ONLY)
    etag = wrapped.put("k", b"2", precondition=IfMatch(etag))
    with pytest.raises(FailedPreconditionError):
        wrapped.put("k", b"3", precondition=IfMatch("stale"))
    with pytest.raises(TypeError):
        wrapped.put("k", b"3", if_none_match=True)  # type: ignore[call-arg]  # the old keyword
    with pytest.raises(InvalidArgumentError, match="not a precondition"):
        wrapped.put("k", b"3", precondition=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="create-only"):
        wrapped.copy("k", "c", precondition=IfMatch(etag))  # type: ignore[arg-type]
    with pytest.raises(FailedPreconditionError):
        wrapped.set_metadata("gone", {}, precondition=IfMatch(etag))  # gone is a failed IfMatch
    with pytest.raises(FailedPreconditionError):
        wrapped.put("gone", b"", precondition=IfMatch(etag))
    wrapped.delete("gone", precondition=IfMatch(etag))  # already gone: what a delete asks for
    wrapped.delete("k", precondition=IfMatch(etag))
