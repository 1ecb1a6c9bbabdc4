"""A request sent beside the caller's own, so that two round trips overlap.

``Beside(pool, fn)`` starts ``fn`` on ``pool`` at once; ``result`` gives its answer when the
caller needs it. If the pool is busy and ``fn`` has not started by then (or the pool no longer
takes work), the caller runs ``fn`` itself: never slower than one call after the other, and no
wait on a pool that might be waiting on the caller. Every wait is bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Generic, TypeVar

from .errors import UnavailableError

__all__ = ["WAIT_SECONDS", "Beside"]

WAIT_SECONDS = 300.0
"""Longest wait for a call already under way (each request has its SDK's own timeouts)."""

_T = TypeVar("_T")


class Beside(Generic[_T]):
    """One call of ``fn`` on ``pool``, started now; its answer (or error) once, when asked."""

    def __init__(self, pool: Executor, fn: Callable[[], _T]) -> None:
        self._fn = fn
        self._future: Future[_T] | None
        try:
            self._future = pool.submit(fn)
        except RuntimeError:  # the pool is shut down: ``result`` runs it in the caller
            self._future = None
        self._done = False
        self._value: _T | None = None
        self._error: BaseException | None = None

    def result(self, timeout: float = WAIT_SECONDS) -> _T:
        """``fn``'s answer; raises what it raised. Runs it here if it never started."""
        if not self._done:
            self._done = True
            try:
                if self._future is None or self._future.cancel():
                    self._value = self._fn()
                else:
                    self._value = self._future.result(timeout)
            except FutureTimeout as exc:
                self._error = UnavailableError(f"no answer within {timeout}s")
                self._error.__cause__ = exc
            except BaseException as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def settle(self, timeout: float = WAIT_SECONDS) -> _T | None:
        """For clean-up after another error: ``fn``'s answer if it ran or is running (waited
        for), None if it failed, or if it had not started (it then never runs)."""
        if not self._done and (self._future is None or self._future.cancel()):
            self._done = True
            self._error = UnavailableError("not run: the caller failed first")
            return None
        try:
            return self.result(timeout)
        except Exception:
            return None
