"""Read-ahead for one blob: sequential reads are served from large ranged gets fetched ahead.

A blob is cut into aligned windows of ``window`` bytes (the store's part size). A read that
continues where an earlier read of the same reader ended, or a reader's first read when it
starts at offset 0, is sequential: the windows it needs,
and the ``depth - 1`` windows after them, are fetched in parallel (one ranged get each) and kept
until the readers move past them. Any other read is served from the windows already held when
it can be, else by ranged gets of exactly what it asks for, as without read-ahead.

Memory: a reader holds at most ``depth + 1`` windows; all readers of a process together hold
at most ``PROCESS_BUDGET`` bytes (``CARGOHOLD_READAHEAD_BYTES``). When the budget is spent a
reader fetches only what each read asks for. Blobs never change under their digest, so a window
fetched once stays valid; a blob deleted while it is read makes the next fetch raise
``NotFoundError``.

Several threads may read through one reader at once (the plugin shares one per digest): the
lock guards the bookkeeping only; fetches and waits happen outside it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from .errors import InvalidArgumentError, UnavailableError

__all__ = ["PROCESS_BUDGET", "ByteBudget", "ReadAhead"]

MiB = 1024 * 1024
WAIT_SECONDS = 300.0
"""Longest wait for one window (each get has its SDK's own timeouts well below this)."""
MAX_CURSORS = 4
"""Sequential streams tracked per reader (interleaved readers of one blob)."""

Fetch = Callable[[int, int], bytes]


class ByteBudget:
    """A pool of bytes that read-ahead windows take from and give back; never waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Bytes taken now."""
        with self._lock:
            return self._used

    def try_take(self, n: int) -> bool:
        """Take ``n`` bytes if they are free."""
        with self._lock:
            if self._used + n > self.limit:
                return False
            self._used += n
            return True

    def give(self, n: int) -> None:
        """Return ``n`` bytes taken earlier."""
        with self._lock:
            self._used = max(0, self._used - n)


def _budget_from_env() -> int:
    raw = os.environ.get("CARGOHOLD_READAHEAD_BYTES", "")
    if not raw:
        return 256 * MiB
    if not raw.isdigit():
        raise InvalidArgumentError(f"CARGOHOLD_READAHEAD_BYTES must be a byte count, got {raw!r}")
    return int(raw)


PROCESS_BUDGET = ByteBudget(_budget_from_env())
"""What every read-ahead window of this process may hold together (default 256 MiB; 0 turns
read-ahead off)."""


@dataclass
class _Window:
    future: Future[bytes]
    nbytes: int


def _succeeded(future: Future[bytes]) -> bool:
    """Done with a result (never waits)."""
    return future.done() and not future.cancelled() and future.exception() is None


class ReadAhead:
    """Sequential-read detection and the windows of one blob (see the module docstring)."""

    def __init__(
        self,
        fetch: Fetch,
        size: int,
        executor: Executor,
        window: int,
        depth: int,
        budget: ByteBudget | None = None,
    ) -> None:
        self._fetch = fetch
        self._size = size
        self._executor = executor
        self.window = max(window, 1)
        self.depth = max(depth, 1)
        self._budget = budget if budget is not None else PROCESS_BUDGET
        self._windows: OrderedDict[int, _Window] = OrderedDict()  # least recently used first
        self._cursors: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def held(self) -> int:
        """Windows held now (fetched or in flight)."""
        with self._lock:
            return len(self._windows)

    def read(self, offset: int, length: int) -> bytes | None:
        """The bytes ``[offset, offset + length)`` (within the blob) from windows, or ``None``
        when this read should go straight to the store."""
        end = offset + length
        first, last = offset // self.window, (end - 1) // self.window
        if first == last:
            win = self._continuing(offset, end, first)
            if win is not None:
                # A sequential read inside one window with everything ahead already under
                # way: what the general path below would do, without its bookkeeping.
                try:
                    pieces = [self._result(first, win)]
                finally:
                    if end == first * self.window + self._span(first):
                        self._drop_behind()  # only a read that ends a window passes one
                return self._cut(offset, end, first, pieces)
        wanted = range(first, last + 1)
        with self._lock:
            if self._closed:
                return None
            # A first read from offset 0 starts a pass over the blob (unpacking, copying).
            sequential = offset in self._cursors or (offset == 0 and not self._cursors)
            self._note_cursor(offset, end)
            if len(wanted) > self.depth:
                return None
            if not sequential and any(i not in self._windows for i in wanted):
                return None
            candidates: list[int] = []
            evicted: list[_Window] = []
            if sequential:
                ahead = range(last + 1, min(last + self.depth, self._last_index()) + 1)
                candidates = [i for i in (*wanted, *ahead) if i not in self._windows]
                evicted = self._make_room(len(candidates), {*wanted, *ahead})
        for win in evicted:
            self._release(win)
        todo, windows = self._install(self._grant(candidates), wanted)
        self._start_all(todo)
        if windows is None:
            return None
        try:
            pieces = [self._result(i, w) for i, w in zip(wanted, windows, strict=True)]
        finally:
            self._drop_behind()
        return self._cut(offset, end, first, pieces)

    def holds(self, offset: int) -> bool:
        """Whether a window holding (or fetching) the byte at ``offset`` is kept now."""
        with self._lock:
            return offset // self.window in self._windows

    def read_ready(self, offset: int, length: int) -> bytes | None:
        """``read``'s answer when it is already here: a read that continues a stream inside
        one fetched window, with the windows ahead all held. Never waits, fetches or evicts
        (an event loop may call it); ``None`` means "use ``read``", and then nothing was
        noted."""
        end = offset + length
        index = offset // self.window
        if length <= 0 or (end - 1) // self.window != index:
            return None
        win = self._continuing(offset, end, index, fetched=True)
        if win is None:
            return None
        piece = win.future.result()
        if end == index * self.window + self._span(index):
            self._drop_behind()
        return self._cut(offset, end, index, [piece])

    def close(self) -> None:
        """Drop every window and give its bytes back."""
        with self._lock:
            self._closed = True
            dropped = list(self._windows.values())
            self._windows.clear()
        for win in dropped:
            self._release(win)

    # -- under the lock ---------------------------------------------------------------------

    def _continuing(
        self, offset: int, end: int, index: int, *, fetched: bool = False
    ) -> _Window | None:
        """Window ``index`` if ``[offset, end)`` continues a stream inside it and the windows
        ahead are all held (nothing to fetch or evict), and with ``fetched`` if its bytes are
        in (its fetch succeeded); the read is then noted. Else None, and nothing is noted."""
        with self._lock:
            if self._closed or offset not in self._cursors:
                return None
            win = self._windows.get(index)
            if win is None:
                return None
            if fetched and not _succeeded(win.future):
                return None  # not yet; or ``read`` forgets the failed window and raises
            windows = self._windows
            for ahead in range(index + 1, min(index + self.depth, self._last_index()) + 1):
                if ahead not in windows:
                    return None
            self._note_cursor(offset, end)
            windows.move_to_end(index)
            return win

    def _last_index(self) -> int:
        return max(self._size - 1, 0) // self.window

    def _span(self, index: int) -> int:
        start = index * self.window
        return min(self.window, self._size - start)

    def _note_cursor(self, offset: int, end: int) -> None:
        self._cursors.pop(offset, None)
        self._cursors[end] = None
        self._cursors.move_to_end(end)
        while len(self._cursors) > MAX_CURSORS:
            self._cursors.popitem(last=False)

    def _make_room(self, wanted: int, keep: set[int]) -> list[_Window]:
        """Take least recently used windows outside ``keep`` out, so ``wanted`` more fit."""
        excess = len(self._windows) + wanted - (self.depth + 1)
        out = [i for i in self._windows if i not in keep][: max(excess, 0)]
        return [self._windows.pop(i) for i in out]

    # -- outside the lock -------------------------------------------------------------------

    def _grant(self, candidates: list[int]) -> list[tuple[int, _Window]]:
        """New windows for ``candidates``, in order, while the budget lasts."""
        granted: list[tuple[int, _Window]] = []
        for index in candidates:
            nbytes = self._span(index)
            if not self._budget.try_take(nbytes):
                break
            granted.append((index, _Window(Future(), nbytes)))
        return granted

    def _install(
        self, granted: list[tuple[int, _Window]], wanted: range
    ) -> tuple[list[tuple[int, _Window]], list[_Window] | None]:
        """Put granted windows in place (those still missing, within the cap); return the ones
        to start and the windows of ``wanted`` (``None`` if one is missing)."""
        todo: list[tuple[int, _Window]] = []
        surplus: list[_Window] = []
        with self._lock:
            for index, win in granted:
                if self._closed or index in self._windows or len(self._windows) > self.depth:
                    surplus.append(win)
                    continue
                self._windows[index] = win
                todo.append((index, win))
            found = [self._windows.get(index) for index in wanted]
            windows = [w for w in found if w is not None]
            for index in wanted if len(windows) == len(found) else ():
                self._windows.move_to_end(index)
        for win in surplus:
            self._budget.give(win.nbytes)
        return todo, windows if len(windows) == len(wanted) else None

    def _start_all(self, todo: list[tuple[int, _Window]]) -> None:
        for n, (index, win) in enumerate(todo):
            try:
                self._start(index, win)
            except RuntimeError as exc:  # the executor is shut down
                for later_index, later in todo[n:]:
                    later.future.cancel()
                    self._forget(later_index, later)
                raise UnavailableError("the store is closed") from exc

    def _start(self, index: int, win: _Window) -> None:
        start = index * self.window

        def run() -> None:
            if not win.future.set_running_or_notify_cancel():
                return
            try:
                win.future.set_result(self._fetch(start, win.nbytes))
            except BaseException as exc:
                win.future.set_exception(exc)

        self._executor.submit(run)

    def _result(self, index: int, win: _Window) -> bytes:
        try:
            return win.future.result(timeout=WAIT_SECONDS)
        except FutureTimeout as exc:
            self._forget(index, win)
            raise UnavailableError(f"read-ahead window {index} took over {WAIT_SECONDS}s") from exc
        except CancelledError:
            # Another reader made room (or closed the reader) before the fetch started.
            return self._fetch(index * self.window, win.nbytes)
        except BaseException:
            self._forget(index, win)  # the next read tries again
            raise

    def _forget(self, index: int, win: _Window) -> None:
        with self._lock:
            if self._windows.get(index) is win:
                del self._windows[index]
            else:
                return
        self._release(win)

    def _release(self, win: _Window) -> None:
        """Give the window's bytes back once no fetch can still be filling it."""
        nbytes = win.nbytes
        win.future.cancel()
        win.future.add_done_callback(lambda _f: self._budget.give(nbytes))

    def _drop_behind(self) -> None:
        """Drop windows that every tracked stream has passed."""
        with self._lock:
            if not self._cursors:
                return
            lowest = min(self._cursors)
            behind = [i for i in self._windows if i * self.window + self._span(i) <= lowest]
            dropped = [self._windows.pop(i) for i in behind]
        for win in dropped:
            self._release(win)

    def _cut(self, offset: int, end: int, first: int, pieces: list[bytes]) -> bytes:
        """``[offset, end)`` out of the windows from index ``first`` on, copying only that."""
        out: list[bytes | memoryview] = []
        start = first * self.window
        for piece in pieces:
            lo, hi = max(offset - start, 0), min(end - start, len(piece))
            if lo < hi:
                out.append(piece if lo == 0 and hi == len(piece) else memoryview(piece)[lo:hi])
            if len(piece) < self.window:
                break  # a short window (the object changed) ends the data
            start += self.window
        if len(out) == 1:
            return bytes(out[0])
        return b"".join(out)
