"""``walk`` fetches label records ahead in parallel even when few blobs have them."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import cargohold
from cargohold.helpers import write_blob
from cargohold.labels import LabelRecord


def test_sparse_label_records_are_fetched_in_parallel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cargohold.open_store(f"file://{tmp_path}") as store:
        labelled: set[str] = set()
        for i in range(100):
            data = f"blob {i}".encode()
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            labels = {"n": str(i)} if i % 10 == 0 else None  # one blob in ten: 10 records
            write_blob(store, f"w{i}", io.BytesIO(data), expected=digest, labels=labels)
            if labels:
                labelled.add(digest)

        lock = threading.Lock()
        state = {"now": 0, "most": 0, "fetches": 0}
        fetch = store.labels.from_object

        def slow(obj: Any, has_sidecar: bool) -> LabelRecord | None:
            if not store.labels.needs_request(obj, has_sidecar):
                return fetch(obj, has_sidecar)
            with lock:
                state["now"] += 1
                state["fetches"] += 1
                state["most"] = max(state["most"], state["now"])
            try:
                time.sleep(0.2)
                return fetch(obj, has_sidecar)
            finally:
                with lock:
                    state["now"] -= 1

        monkeypatch.setattr(store.labels, "from_object", slow)
        infos = list(store.walk())
        assert [i.digest for i in infos] == sorted(i.digest for i in infos)  # listing order
        assert {i.digest for i in infos if i.labels} == labelled
        assert all(i.labels == {} for i in infos if i.digest not in labelled)
        assert state["fetches"] == len(labelled)
        # Ten records one blob in ten apart: all in flight at once (the window is 8 or more),
        # not one or two at a time as a window counting every listed blob would allow.
        assert state["most"] >= min(len(labelled), store._walk_window())
