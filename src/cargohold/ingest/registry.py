"""The writers of this process by ref: shared by the store and its writers.

A store answers ``status`` and ``list_statuses`` from the writers it has open (their snapshots are
newer than their saved state; a retired writer's ingestion is over, whatever its records still
say), lets ``abort`` reach a writer of this process, and lets a reopen or an abort of a ref wait
(bounded) for a writer of this process that is still closing it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Protocol

from ..locks import Lease
from ..types import Status

__all__ = ["BUSY_WAIT", "RegisteredWriter", "WriterRegistry"]

BUSY_WAIT = 0.5
"""How long a reopen waits for a writer of this process that is still in use (not closing)."""


class RegisteredWriter(Protocol):
    """What the registry and the store need of a writer (``writer.Writer`` is one).

    Keyed on this rather than on ``Writer`` so that the registry, and the context that holds
    it, depend on nothing above them.
    """

    @property
    def ref(self) -> str:
        """The ingestion's ref."""
        ...

    @property
    def lease(self) -> Lease:
        """The lease the writer holds on its ref."""
        ...

    @property
    def closing(self) -> bool:
        """Whether the writer is closing (or has closed): a reopen waits longer for it."""
        ...

    @property
    def retired(self) -> bool:
        """Whether the writer committed and only its records' removal is left (never waits):
        the ingestion no longer counts as one."""
        ...

    def status(self) -> Status:
        """The ingestion's status as the writer sees it (never waits)."""
        ...

    def mark_aborted(self) -> None:
        """An abort in this process: later writes fail, close does nothing."""
        ...


class WriterRegistry:
    """Open writers by ref, held weakly.

    A writer nobody holds any more (its caller was interrupted before it could close it) is
    collected, and its lease with it, so the ref does not stay locked while this process lives
    (see ``locks``).

    ``_lock`` is a leaf lock: held only to read or change ``_writers``, never across a call into
    a writer, a driver or anything else that may block. Every wait on ``_changed`` is bounded.
    """

    def __init__(self) -> None:
        self._writers: weakref.WeakValueDictionary[str, RegisteredWriter] = (
            weakref.WeakValueDictionary()
        )
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def add(self, writer: RegisteredWriter) -> None:
        """Register ``writer`` as the one of this process that holds its ref."""
        with self._lock:
            self._writers[writer.ref] = writer

    def get(self, ref: str) -> RegisteredWriter | None:
        """The writer of this process that holds ``ref``, if any."""
        with self._lock:
            return self._writers.get(ref)

    def snapshot(self) -> list[tuple[str, RegisteredWriter]]:
        """Every registered writer, copied out (the caller reads them without the lock)."""
        with self._lock:
            return list(self._writers.items())

    def pop(self, ref: str) -> RegisteredWriter | None:
        """Unregister and return the writer holding ``ref`` (an abort), waking waiters."""
        with self._changed:
            live = self._writers.pop(ref, None)
            self._changed.notify_all()
        return live

    def discard(self, writer: RegisteredWriter) -> None:
        """Unregister ``writer`` if it is still the one holding its ref, waking waiters."""
        with self._changed:
            if self._writers.get(writer.ref) is writer:
                del self._writers[writer.ref]
                self._changed.notify_all()

    def wait_until_free(self, ref: str, seconds: float, clock: Callable[[], float]) -> None:
        """Wait (bounded) until no writer of this process holds ``ref``.

        A writer that is closing is waited for up to ``seconds``; one still in use only up to
        ``BUSY_WAIT``, so that a ref that is really taken is reported Unavailable quickly.
        Reading ``closing`` under the lock is safe: it only reads two flags of the writer.
        """
        start = clock()
        with self._changed:
            while (live := self._writers.get(ref)) is not None:
                limit = seconds if live.closing else min(seconds, BUSY_WAIT)
                remaining = start + limit - clock()
                if remaining <= 0:
                    return
                self._changed.wait(min(remaining, 0.05))
