"""``status`` of an ingestion whose writer, in another process, saves its state and lets go of
its lease between the status's two reads still finds the ingestion."""

from __future__ import annotations

from pathlib import Path

import pytest

import cargohold
from cargohold.errors import NotFoundError
from cargohold.ingest import manager
from cargohold.ingest.context import IngestContext
from cargohold.ingest.state import IngestRecord


def test_status_between_a_writers_state_save_and_lease_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"file://{tmp_path}"
    with cargohold.open_store(url) as mine, cargohold.open_store(url) as theirs:
        writer = theirs.writer("racing")
        writer.write(b"x" * 1000)  # no state saved yet: the first record rides on the lease
        real = manager.load_lock_record

        def lock_read_after_their_close(ctx: IngestContext, key: str) -> IngestRecord | None:
            writer.close()  # saves the state, then deletes the lease: just between our reads
            return real(ctx, key)

        monkeypatch.setattr(manager, "load_lock_record", lock_read_after_their_close)
        status = mine.status("racing")
        assert (status.ref, status.offset) == ("racing", 1000)

        monkeypatch.setattr(manager, "load_lock_record", real)
        mine.abort("racing")
        with pytest.raises(NotFoundError):
            mine.status("racing")
