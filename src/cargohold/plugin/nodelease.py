"""One ``serve`` process per node id: a lease on ``<prefix>/nodes/<node-id>`` while it serves.

Two processes serving one node id share that node's holder records (``ownership``) without
knowing it: when one of them deletes a blob its containerd no longer uses, it removes the record
the other still relies on, and the blob can go while the other containerd still references it.
So ``serve`` holds the node's lease (renewed by the store's lease thread, as an ingestion's) from
before it listens until it has stopped. A keeper thread takes and watches it:

* **held**: taken. A holder on this machine whose process is gone is taken over at once; one
  elsewhere that stopped renewing, once its lease expired.
* **conflict**: another live process has held it for ``wait`` seconds (it renews, so it is
  serving). ``serve`` refuses to start, naming that process; a process being replaced lets
  go when it stops, which the wait covers.
* **lost**: taken over or removed while this process held it (this process stalled past the
  lease timeout, or someone deleted it): another process is acting as this node now, so
  ``serve`` stops.
* **pending**: the store did not answer yet. ``serve`` starts anyway, as it does when the store
  is down (health says NOT_SERVING), and the keeper keeps trying; a conflict found later stops
  the process.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from datetime import UTC, datetime

from ..errors import ContentError
from ..locks import Lease, LeaseHeldError, read_lease
from ..store import Store

__all__ = ["NodeLease", "NodeState", "node_key"]

_log = logging.getLogger("cargohold.plugin.nodelease")

_RETRY_FIRST = 0.25
_RETRY_MAX = 2.0
_WATCH_EVERY = 0.5


class NodeState(enum.Enum):
    """Where this process stands with its node id."""

    PENDING = "pending"
    HELD = "held"
    CONFLICT = "conflict"
    LOST = "lost"


def node_key(store: Store, node: str) -> str:
    """The key of ``node``'s lease in ``store``."""
    return f"{store.layout.root}nodes/{node}"


class NodeLease:
    """This process's hold on its node id in one store, kept by a thread of its own."""

    def __init__(self, store: Store, node: str, *, wait: float) -> None:
        self._store = store
        self.node = node
        self.key = node_key(store, node)
        self.wait = wait
        self._lease: Lease | None = None
        self._state = NodeState.PENDING
        self.holder = ""
        """Who held the lease when the state became CONFLICT (for the message)."""
        self._changed = threading.Condition()
        self._answered = False  # the store answered an attempt (taken, or held by another)
        self._unreachable = False  # an attempt failed with a store error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> NodeState:
        """The state now (a snapshot)."""
        with self._changed:
            return self._state

    def start(self) -> None:
        """Start the keeper thread."""
        self._thread = threading.Thread(target=self._keep, name="cargohold-node", daemon=True)
        self._thread.start()

    def settled(
        self, timeout: float, interrupt: threading.Event, answer_timeout: float = 10.0
    ) -> NodeState:
        """Wait for the state to leave PENDING, at most ``timeout`` seconds; return it.

        Returns PENDING sooner when ``interrupt`` is set, or when the store does not answer:
        its first answer took more than ``answer_timeout`` seconds, or was an error.
        """
        start = time.monotonic()
        with self._changed:
            while self._state is NodeState.PENDING and not interrupt.is_set():
                now = time.monotonic()
                if self._unreachable or (not self._answered and now - start >= answer_timeout):
                    break
                left = start + timeout - now
                if left <= 0:
                    break
                self._changed.wait(min(left, 0.5))
            return self._state

    def conflict_message(self) -> str:
        """The one-line error for a CONFLICT."""
        return f"node id {self.node!r} is in use by another serve process ({self.holder})"

    def close(self, timeout: float = 10.0) -> None:
        """Stop the keeper and let the node id go (nothing to release unless it was held)."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        lease, self._lease = self._lease, None
        if lease is not None:
            try:
                self._store.leases.release(lease)
            except ContentError:
                _log.warning("could not release the node's lease; it expires by itself")

    def _set(self, state: NodeState | None = None, *, answered: bool) -> None:
        """Record an attempt's outcome: the store answered it (or failed), maybe a new state."""
        with self._changed:
            if state is not None:
                self._state = state
            self._answered = self._answered or answered
            self._unreachable = not answered
            self._changed.notify_all()

    def _keep(self) -> None:
        if self._take():
            self._watch()

    def _take(self) -> bool:
        """Take the lease, retrying; False once stopped or in CONFLICT."""
        payload: dict[str, object] = {
            "node": self.node,
            "started": datetime.now(UTC).isoformat(),
        }
        held_since: float | None = None
        delay = _RETRY_FIRST
        unreachable_logged = waiting_logged = False
        while not self._stop.is_set():
            try:
                lease = self._store.leases.acquire(self.key, payload)
            except LeaseHeldError:
                self._set(answered=True)
                now = time.monotonic()
                held_since = now if held_since is None else held_since
                if now - held_since >= self.wait:
                    self.holder = self._describe_holder()
                    self._set(NodeState.CONFLICT, answered=True)
                    return False
                if not waiting_logged:
                    _log.warning(
                        "node id in use by another process; waiting for it to stop",
                        extra={"node": self.node, "holder": self._describe_holder()},
                    )
                    waiting_logged = True
            except ContentError as exc:
                self._set(answered=False)
                if not unreachable_logged:
                    _log.warning(
                        "cannot take the node's lease yet; retrying",
                        extra={"node": self.node, "error": str(exc)},
                    )
                    unreachable_logged = True
            else:
                self._lease = lease
                self._set(NodeState.HELD, answered=True)
                return True
            self._stop.wait(delay)
            delay = min(delay * 2, _RETRY_MAX)
        return False

    def _watch(self) -> None:
        """Notice a lease the store's renewal found taken over or removed."""
        while not self._stop.wait(_WATCH_EVERY):
            lease = self._lease
            if lease is not None and lease.lost:
                _log.error(
                    "this node's lease was taken over or removed: another process is acting "
                    "as this node",
                    extra={"node": self.node},
                )
                self._set(NodeState.LOST, answered=True)
                return

    def _describe_holder(self) -> str:
        """Who holds the lease, as its body says (best effort)."""
        try:
            body = read_lease(self._store.driver, self.key)
        except ContentError:
            body = None
        if body is None:
            return "holder unknown"
        expires = body.get("expires")
        renewed = ""
        if isinstance(expires, (int, float)):
            renewed = (
                f", its lease runs {max(0.0, expires - time.time()):.0f} s more unless renewed"
            )
        return f"pid {body.get('pid')} on host {body.get('host')}{renewed}"
