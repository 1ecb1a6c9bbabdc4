"""A writer's parts in flight: bounded parallel part uploads, reaped in order.

Memory and parallelism are both bounded: at most ``concurrency + 1`` parts are held (one more
than the uploads in flight, so that the next part is ready the moment an upload finishes) and
at most ``concurrency`` are being sent. Finished uploads become confirmed parts strictly in part
order, so the confirmed parts are always parts 1..n: what a checkpoint may record.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass

from ..drivers.base import Part
from .context import IngestContext

__all__ = ["Checkpoint", "PartUploader", "part_size_for"]

_PARTS_PER_STEP = 1000


def part_size_for(base: int, number: int) -> int:
    """Size of part ``number``: the base doubles every 1,000 parts (room for 10,000 parts)."""
    return base << ((number - 1) // _PARTS_PER_STEP)


@dataclass(frozen=True)
class Checkpoint:
    """A part boundary whose parts are all confirmed: a point an ingestion may resume at."""

    offset: int
    hash_state: bytes
    parts: int
    """How many of the confirmed parts it covers."""


@dataclass
class _Pending:
    number: int
    size: int
    future: Future[Part]
    hash_state: bytes | None
    end_offset: int


class PartUploader:
    """The upload side of one writer. Not thread-safe: its writer's lock serialises calls."""

    def __init__(self, ctx: IngestContext, parts: list[Part]) -> None:
        self._ctx = ctx
        self.parts = parts
        """Confirmed parts, numbered 1..n."""
        self.error: BaseException | None = None
        """The first failure: later parts are not confirmed, the writer cannot go on."""
        self.checkpoint: Checkpoint | None = None
        """The newest part boundary with every part before it confirmed (None: none yet)."""
        self._pending: list[_Pending] = []
        self._slots = threading.Semaphore(ctx.concurrency + 1)
        self._gate = threading.Semaphore(ctx.concurrency)

    def next_number(self) -> int:
        """The number the next part gets."""
        return len(self.parts) + len(self._pending) + 1

    def submit(
        self,
        key: str,
        upload_id: str,
        data: bytes,
        *,
        end_offset: int,
        hash_state: bytes | None,
    ) -> None:
        """Send ``data`` (ending at ``end_offset``) as the next part; blocks while
        ``concurrency + 1`` parts are held. ``hash_state`` (the digest's state at
        ``end_offset``) makes the part's end a checkpoint once it is confirmed."""
        number = self.next_number()
        self._slots.acquire()
        try:
            future = self._ctx.executor.submit(
                self._send, key, upload_id, number, end_offset - len(data), data
            )
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _f: self._slots.release())
        self._pending.append(_Pending(number, len(data), future, hash_state, end_offset))

    def _send(self, key: str, upload_id: str, number: int, offset: int, data: bytes) -> Part:
        with self._gate:
            return self._ctx.driver.upload_part_positioned(key, upload_id, number, offset, data)

    def reap(self, wait: bool = False) -> None:
        """Move finished uploads (in order) to the confirmed parts; remember the first error."""
        while self._pending and self.error is None:
            head = self._pending[0]
            if not head.future.done():
                if not wait:
                    return
                # An interruption while waiting (Ctrl-C) is the caller's, not the upload's.
                futures_wait([head.future])
            failure = head.future.exception()
            if failure is not None:
                self.error = failure
                break
            part = head.future.result()
            self.parts.append(part)
            self._pending.pop(0)
            if head.hash_state is not None:
                self.checkpoint = Checkpoint(head.end_offset, head.hash_state, len(self.parts))
        if self.error is not None:
            self.wait_all_quietly()

    def wait_all_quietly(self) -> None:
        """Wait for every upload in flight, ignoring their failures (not an interruption)."""
        futures_wait([pending.future for pending in self._pending])
        self._pending.clear()

    def reset(self) -> None:
        """Forget every part and failure (after ``wait_all_quietly``): a restart from zero."""
        self.parts = []
        self.error = None
        self.checkpoint = None
