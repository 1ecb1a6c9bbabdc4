"""``Store.info(expect_present=True)``: where labels live in sidecars, the sidecar's get goes
out beside the blob's head, with the same answer as one after the other."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path
from typing import Any

import pytest

import cargohold
from cargohold.errors import NotFoundError
from cargohold.helpers import write_blob
from cargohold.layout import SIDECAR_SUFFIX
from cargohold.store import Store


def _put(store: Store, data: bytes, labels: dict[str, str] | None) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    write_blob(store, f"w-{digest[-8:]}", io.BytesIO(data), expected=digest, labels=labels)
    return digest


def test_same_answers_with_and_without(tmp_path: Path) -> None:
    with cargohold.open_store(f"file://{tmp_path}") as store:
        assert not store.labels.inline  # the local directory keeps sidecars
        labelled = _put(store, b"labelled", {"a": "1", "containerd.io/gc.root": "x"})
        plain = _put(store, b"plain", None)
        for digest in (labelled, plain):
            assert store.info(digest, expect_present=True) == store.info(digest)
        assert store.info(labelled, expect_present=True).labels == {
            "a": "1",
            "containerd.io/gc.root": "x",
        }
        missing = "sha256:" + hashlib.sha256(b"never").hexdigest()
        for expect in (True, False):
            with pytest.raises(NotFoundError):
                store.info(missing, expect_present=expect)


def test_the_head_and_the_sidecar_get_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cargohold.open_store(f"file://{tmp_path}") as store:
        digest = _put(store, b"overlap", {"k": "v"})
        sidecar_asked = threading.Event()
        head, get = store.driver.head, store.driver.get
        seen: list[bool] = []

        def slow_head(key: str, *args: Any, **kwargs: Any) -> Any:
            # The head answers only once the sidecar's get has gone out (5 s at most): one
            # after the other, it would find it not asked yet.
            seen.append(sidecar_asked.wait(5))
            return head(key, *args, **kwargs)

        def noting_get(key: str, *args: Any, **kwargs: Any) -> Any:
            if key.endswith(SIDECAR_SUFFIX):
                sidecar_asked.set()
            return get(key, *args, **kwargs)

        monkeypatch.setattr(store.driver, "head", slow_head)
        monkeypatch.setattr(store.driver, "get", noting_get)
        info = store.info(digest, expect_present=True)
        assert seen == [True]
        assert info.labels == {"k": "v"}
        # Without the hint the get waits for the head (the head finds nothing asked yet).
        sidecar_asked.clear()
        seen.clear()

        def watching_head(key: str, *args: Any, **kwargs: Any) -> Any:
            seen.append(sidecar_asked.is_set())
            return head(key, *args, **kwargs)

        monkeypatch.setattr(store.driver, "head", watching_head)
        assert store.info(digest).labels == {"k": "v"}
        assert seen == [False]
