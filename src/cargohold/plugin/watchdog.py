"""The slow-RPC watchdog: log the stack of any RPC whose handler is stuck in server code.

A thread wakes a few times per bound and looks at the calls the interceptor tracks. A call whose
handler has been *busy* (running server code, not waiting for the client) for longer than
``bound`` seconds is logged once, at warning level, with the stack of its thread and the stacks
of the threads working for the same writer (a Write's bytes are stored on other threads). Its
end is logged too. Reading stacks never waits on anything the RPC holds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .calls import Call, CallTracker
from .stacks import format_stack, thread_name, writer_threads

__all__ = ["SlowRpcWatchdog"]

_log = logging.getLogger("cargohold.plugin.watchdog")
_HEALTH = "grpc.health.v1.Health"


class SlowRpcWatchdog:
    """Owns one daemon thread; ``stop()`` ends it."""

    def __init__(
        self,
        tracker: CallTracker,
        bound: float,
        *,
        on_slow: Callable[[Call], None] | None = None,
    ) -> None:
        if bound <= 0:
            raise ValueError("the slow-RPC bound must be positive")
        self._tracker = tracker
        self._bound = bound
        self._on_slow = on_slow
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="cargohold-slow-rpc-watchdog", daemon=True
        )
        self._watched: dict[int, Call] = {}

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (returns at once; the thread ends within one tick)."""
        self._stop.set()

    def _run(self) -> None:
        tick = min(1.0, self._bound / 4)
        while not self._stop.wait(tick):
            try:
                self.check()
            except Exception:  # a diagnosis aid must never take the server down
                _log.exception("slow-RPC check failed")

    def check(self, now: float | None = None) -> list[Call]:
        """Log newly slow calls and the end of earlier ones; return the newly slow calls."""
        now = time.monotonic() if now is None else now
        running = {call.id: call for call in self._tracker.running()}
        for call_id in [i for i in self._watched if i not in running]:
            call = self._watched.pop(call_id)
            _log.info(
                "slow RPC finished",
                extra={**_fields(call), "seconds": round(now - call.started, 3)},
            )
        slow = []
        for call in running.values():
            if call.service == _HEALTH:
                continue  # a health Watch waits for changes by design
            busy_since = call.busy_since
            if call.reported or busy_since is None or now - busy_since < self._bound:
                continue
            call.reported = True
            self._watched[call.id] = call
            slow.append(call)
            self._report(call, now, busy_since)
        return slow

    def _report(self, call: Call, now: float, busy_since: float) -> None:
        fields = {
            **_fields(call),
            "seconds": round(now - call.started, 3),
            "busy_seconds": round(now - busy_since, 3),
            "thread_name": thread_name(call.thread),
            "stack": format_stack(call.thread),
        }
        helpers = writer_threads("/" + call.subject) if call.method == "Write" else []
        helpers = [h for h in helpers if h.ident != call.thread]
        if helpers:
            fields["writer_threads"] = "\n".join(
                f"--- thread {h.name} (ref {h.ref})\n{h.stack}" for h in helpers
            )
        _log.warning("slow RPC: no progress within the bound", extra=fields)
        if self._on_slow is not None:
            self._on_slow(call)


def _fields(call: Call) -> dict[str, object]:
    return {"rpc": f"{call.service}/{call.method}", "subject": call.subject, "call_id": call.id}
