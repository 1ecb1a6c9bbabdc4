"""Collecting the results of blob jobs on a thread pool, interruptibly (copy and import).

``finish(futures)`` yields each job's key and result as the jobs end. On the first failure, or
an interruption of the waiting thread (Ctrl-C), it cancels the jobs not started yet, gives the
running ones ``DRAIN_GRACE`` seconds to end (a writer that stops saves its ingestion, so a
rerun resumes it), and raises that failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from typing import TypeVar

__all__ = ["DRAIN_GRACE", "WAIT_SLICE", "finish"]

WAIT_SLICE = 0.5
"""How long one wait lasts before it is renewed (keeps an interruption prompt)."""
DRAIN_GRACE = 30.0
"""How long running jobs get to end (saving their ingestion state) after a failure."""

K = TypeVar("K")
T = TypeVar("T")


def finish(
    futures: Mapping[K, Future[T]],
    unwrap: Callable[[BaseException], BaseException | None] | None = None,
) -> Iterator[tuple[K, T]]:
    """Each key with its job's result, as the jobs end (see the module docstring).

    ``unwrap(error)`` may name the error to raise instead of a job's own (a job that failed
    because another did reports the other's error).
    """
    by_future = {future: key for key, future in futures.items()}
    pending = set(by_future)
    try:
        while pending:
            finished, pending = wait(pending, timeout=WAIT_SLICE, return_when=FIRST_EXCEPTION)
            for future in finished:
                error = future.exception()
                if error is not None and unwrap is not None:
                    original = unwrap(error)
                    if original is not None:
                        raise original
                yield by_future[future], future.result()
    except BaseException:
        for future in pending:
            future.cancel()
        deadline = time.monotonic() + DRAIN_GRACE
        while pending and time.monotonic() < deadline:
            _done, pending = wait(pending, timeout=min(WAIT_SLICE, deadline - time.monotonic()))
        raise
