"""The documented limits (docs/contract.md): at the limit works, one byte past it is refused."""

from __future__ import annotations

import uuid

import pytest

import cargohold
from cargohold import Info, InvalidArgumentError
from cargohold.labels import MAX_LABEL_BYTES, MAX_LABEL_SET_BYTES, validate_labels


def _label_set(total: int) -> dict[str, str]:
    """Labels whose keys and values add up to exactly ``total`` bytes."""
    labels = {}
    index = 0
    while total > 0:
        key = f"k{index:08d}"
        size = min(MAX_LABEL_BYTES, total)
        if size <= len(key):  # too little left for a key of this shape: one short key
            key = "s" * size
        labels[key] = "v" * (size - len(key))
        total -= size
        index += 1
    return labels


def test_label_set_limit() -> None:
    at_limit = _label_set(MAX_LABEL_SET_BYTES)
    assert validate_labels(at_limit) == at_limit
    with pytest.raises(InvalidArgumentError, match="labels exceed"):
        validate_labels(_label_set(MAX_LABEL_SET_BYTES + 1))


def test_label_set_limit_on_commit_and_update() -> None:
    store = cargohold.open_store(f"memory://{uuid.uuid4().hex}")
    try:
        too_many = _label_set(MAX_LABEL_SET_BYTES + 1)
        with store.writer("r") as writer:
            writer.write(b"x")
            digest = writer.digest()
            with pytest.raises(InvalidArgumentError):
                writer.commit(labels=too_many)
        assert [s.ref for s in store.list_statuses()] == ["r"]  # the ingestion survives
        with store.writer("r") as writer:
            writer.commit(labels={"a": "1"})
        info = store.info(digest)
        with pytest.raises(InvalidArgumentError):
            store.update(Info(digest, info.size, info.created_at, info.updated_at, too_many))
        assert store.info(digest).labels == {"a": "1"}
    finally:
        store.close()
