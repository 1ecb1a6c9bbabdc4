"""What ingestions need from the store that opens them, passed down rather than called back."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from ..drivers.wrapper import MeteredDriver
from ..labels import LabelStore
from ..layout import Layout
from ..locks import LeaseManager
from .registry import WriterRegistry

__all__ = ["IngestContext"]


@dataclass(frozen=True)
class IngestContext:
    """The parts and settings of one store that its writers and ingestion bookkeeping use.

    The store builds one and hands it to every writer it opens; nothing under ``ingest``
    holds a reference to the store itself.
    """

    driver: MeteredDriver
    """The store's driver, wrapped (key checks, call counts; typed, with its capabilities)."""
    executor: Executor
    """The store's pool: part uploads run on it."""
    leases: LeaseManager
    """The refs' leases (``ingest/<h>/lock``)."""
    labels: LabelStore
    """Where a committed blob's labels are kept."""
    layout: Layout
    """Every key of the store."""
    part_size: int
    """The base part size of a new ingestion (see ``uploader.part_size_for``)."""
    concurrency: int
    """Part uploads in flight per writer."""
    lease_timeout: float
    """Seconds a lease lasts; a writer saves a checkpoint about every third of it."""
    writers: WriterRegistry = field(default_factory=WriterRegistry)
    """The writers of this process, shared with the store."""
    clock: Callable[[], float] = time.monotonic
    """The monotonic clock of checkpoints and bounded waits (replaceable in tests)."""
