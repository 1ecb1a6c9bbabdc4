"""The ingest package on its own: no import of the store, and its writer registry's rules."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import cargohold
from cargohold.ingest.registry import BUSY_WAIT


def test_importing_ingest_does_not_import_the_store() -> None:
    code = "import sys, cargohold.ingest; print('cargohold.store' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert done.stdout.decode().strip() == "False"


def test_a_reopen_waits_for_a_closing_writer_and_briefly_for_a_busy_one() -> None:
    with cargohold.open_store("memory://registry") as store:
        busy = store.writer("r")
        start = time.monotonic()
        registry = store._ingest.writers  # the registry the store and its writers share
        registry.wait_until_free("r", 30.0, time.monotonic)
        waited = time.monotonic() - start
        assert BUSY_WAIT <= waited < 5.0  # in use, not closing: only the short bound
        assert registry.get("r") is busy

        busy.mark_closing()
        closer = threading.Timer(0.3, busy.close)
        closer.start()
        start = time.monotonic()
        reopened = store.writer("r", wait=30.0)
        assert time.monotonic() - start < 10.0
        closer.join()
        assert registry.get("r") is reopened
        busy.close()  # closing an old writer again never unregisters the new one
        assert registry.get("r") is reopened
        reopened.close()
        assert registry.get("r") is None
