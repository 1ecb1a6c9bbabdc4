"""What a store holds besides its content: ingestions, leases, upload sessions, stray objects.

After each test of the suite, ``find_leftovers`` lists the store's prefix and sorts whatever is
not committed content (blobs, label sidecars, ``index.json``, ``oci-layout``) into kinds:

* ``ingestion``: an ingestion's folder (its state record, staged data), with the upload session
  its state record names;
* ``lease``: an ingestion's lock object (a writer's lease, released when the writer closes);
* ``upload``: an upload session no ingestion's state names (on drivers whose abort cannot remove
  parts, one aborted during the test is not counted: its parts only expire);
* ``object``: any other object under the prefix (part objects of drivers that keep parts as
  objects and list them, a label sidecar without its blob, keys a test wrote through the raw
  driver and left).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..drivers.base import Driver
from ..errors import ContentError
from ..layout import SIDECAR_SUFFIX, Layout

__all__ = ["KINDS", "AbortLog", "Leftovers", "find_leftovers"]

KINDS = ("ingestion", "lease", "upload", "object")


@dataclass
class Leftovers:
    """What ``find_leftovers`` found, by kind: the keys (or ``key#upload_id``) of each."""

    found: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, what: str) -> None:
        """Note one leftover of ``kind``."""
        self.found.setdefault(kind, []).append(what)

    def without(self, allowed: set[str]) -> dict[str, list[str]]:
        """The leftovers of kinds not in ``allowed``."""
        return {k: sorted(v) for k, v in self.found.items() if k not in allowed}


class AbortLog:
    """The upload sessions aborted while it is installed on a driver class.

    Installed on the class of the driver under test (not an instance), so aborts made through
    any store object, the raw driver included, are seen.
    """

    def __init__(self) -> None:
        self.aborted: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self, driver_class: type[Any]) -> Iterator[AbortLog]:
        """Record every ``abort_upload`` call on instances of ``driver_class`` meanwhile.

        A class that defines no ``abort_upload`` (one that forwards it by ``__getattr__``)
        records nothing: aborted sessions still listed then count as leftovers.
        """
        original: Callable[..., None] | None = getattr(driver_class, "abort_upload", None)
        if original is None:
            yield self
            return

        def abort_upload(this: Any, key: str, upload_id: str) -> None:
            with self._lock:
                self.aborted.add((key, upload_id))
            assert original is not None
            original(this, key, upload_id)

        driver_class.abort_upload = abort_upload
        try:
            yield self
        finally:
            driver_class.abort_upload = original


def _ingestion_uploads(driver: Driver, state_keys: list[str]) -> set[tuple[str, str]]:
    """The upload sessions the state records at ``state_keys`` name."""
    from ..ingest import decode_state  # the store's own record format

    named: set[tuple[str, str]] = set()
    for key in state_keys:
        try:
            record, _ = decode_state(driver.get(key))
        except ContentError:
            continue  # gone meanwhile, or not a record: the folder is reported either way
        if record.upload_key and record.upload_id:
            named.add((record.upload_key, record.upload_id))
    return named


def find_leftovers(
    driver: Driver,
    prefix: str,
    aborted: set[tuple[str, str]],
    hidden: Iterable[str] = (),
) -> Leftovers:
    """Everything under ``prefix`` (a store's) that is not committed content, by kind.

    ``hidden``: objects the driver keeps under the prefix but shows in neither ``list`` nor
    ``list_uploads`` (a commit claim, say); each is an ``object`` leftover.
    """
    layout = Layout(prefix)
    result = Leftovers()
    for key in hidden:
        result.add("object", key)
    state_keys: list[str] = []
    keys = [info.key for info in driver.list(layout.root)]
    listed = set(keys)
    for key in keys:
        if key in (layout.index_key, layout.oci_layout_key):
            continue
        if key.startswith(layout.ingestions):
            rest = key[len(layout.ingestions) :]
            if rest.endswith("/lock"):
                result.add("lease", key)
            else:
                result.add("ingestion", key)
                if rest.endswith("/state"):
                    state_keys.append(key)
            continue
        if layout.digest_of(key) is not None:
            continue  # a committed blob
        blob = key.removesuffix(SIDECAR_SUFFIX)
        if blob != key and blob in listed and layout.digest_of(blob) is not None:
            continue  # the label sidecar of a blob that is there
        result.add("object", key)
    named = _ingestion_uploads(driver, state_keys)
    keeps_parts = not driver.limits.abort_removes_parts
    for upload in driver.list_uploads(layout.root):
        session = (upload.key, upload.upload_id)
        if session in named or (keeps_parts and session in aborted):
            continue
        result.add("upload", f"{upload.key}#{upload.upload_id}")
    return result
