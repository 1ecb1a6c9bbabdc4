"""Node ownership: which blobs and ingestions of a shared store belong to which containerd host.

containerd's garbage collector lists the content backend and deletes every blob its own database
does not reference, and aborts every ingestion it does not know. On a store shared by several
hosts that would destroy the other hosts' content, so each ``cargohold serve`` has a node id and
keeps, per blob, a *holder record* that says "this node uses this blob":

``<prefix>/holders/<alg>/<hex>/<node-id>``   one small object per (blob, node)
``<prefix>/holders/<alg>/<hex>/~deleting``   present while some node decides to delete the blob

* A node *claims* a blob (writes its record) when it commits it, when Info finds it already in
  the store (containerd then records the blob without uploading it), or when a Write is refused
  because the blob exists. Claims are cached in memory: one record write per blob and node.
* A node *releases* a blob on Delete: it removes its own record, then runs the deletion
  protocol, which deletes the blob only if no record is left.
* Ingestion refs are scoped by node (``<node-id>/<ref>`` in the store), because containerd's
  refs (``<namespace>/<seq>/<ref>``) repeat across hosts.

The race between a deleter D and a claimer C is closed by ordering on both sides. D: remove own
record; create ``~deleting`` (create-only); list the records; delete the blob only if there are
none; remove ``~deleting``. C: write own record; wait while ``~deleting`` exists; only then check
that the blob exists. Either D's listing sees C's record (the blob stays) or C's record was
written after that listing, so C's marker check comes after D created the marker: C waits for D
to finish and then sees the blob gone (and uploads it again). Two deleters serialize on the
create-only marker. A marker older than ``stale_after`` seconds (its writer died) is removed with
an etag condition. See docs/containerd.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ..digests import parse_digest
from ..drivers.base import CREATE_ONLY, IfMatch
from ..errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from ..store import Store as ContentStore

__all__ = ["Holdings", "default_node_id", "validate_node_id"]

_log = logging.getLogger("cargohold.plugin.ownership")

_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MARKER = "~deleting"  # cannot be a node id: node ids start with a letter or digit
_LOCK_STRIPES = 64


def validate_node_id(node_id: str) -> str:
    """Return ``node_id`` if it is 1-128 of ``[A-Za-z0-9._-]`` starting alphanumeric."""
    if not _NODE_ID.fullmatch(node_id):
        raise InvalidArgumentError(
            f"node id must be 1-128 characters of [A-Za-z0-9._-] starting with a letter or "
            f"digit, got {node_id!r}"
        )
    return node_id


def default_node_id(machine_id: Path = Path("/etc/machine-id")) -> str:
    """A stable id for this host: a hash of /etc/machine-id, else the host name."""
    try:
        raw = machine_id.read_text().strip()
    except OSError:
        raw = ""
    if raw:
        return "m-" + hashlib.sha256(raw.encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:120].lstrip("._-")
    return validate_node_id(name or "node")


class Holdings:
    """One node's view of a shared store: its holder records and its ingestion refs."""

    def __init__(
        self,
        store: ContentStore,
        node_id: str,
        *,
        stale_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._driver = store.driver
        self.node_id = validate_node_id(node_id)
        self._base = f"{store.prefix}/holders" if store.prefix else "holders"
        self._stale_after = stale_after
        self._sleep = sleep
        self._claimed: set[str] = set()
        self._relied: set[str] = set()  # claimed, and some caller answered from the claim
        self._claimed_lock = threading.Lock()
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    # -- refs ---------------------------------------------------------------------------------

    def scope_ref(self, ref: str) -> str:
        """The store ref for a containerd ref on this node."""
        if not ref:
            raise InvalidArgumentError("ref must not be empty")
        return f"{self.node_id}/{ref}"

    def unscope_ref(self, store_ref: str) -> str | None:
        """The containerd ref of a store ref, or None if another node owns it."""
        head, sep, ref = store_ref.partition("/")
        return ref if sep and head == self.node_id and ref else None

    # -- blobs --------------------------------------------------------------------------------

    def _dir(self, digest: str) -> str:
        parsed = parse_digest(digest)
        return f"{self._base}/{parsed.algorithm}/{parsed.hex}"

    def _lock(self, digest: str) -> threading.Lock:
        return self._locks[hash(digest) % _LOCK_STRIPES]

    def holds_cached(self, digest: str) -> bool:
        """True if this process already wrote this node's record for ``digest``."""
        with self._claimed_lock:
            return digest in self._claimed

    def _relied_on(self, digest: str) -> bool:
        """True if this process holds ``digest`` already; the hold is then relied on (a
        caller answers from it), so ``forget`` leaves it."""
        with self._claimed_lock:
            if digest not in self._claimed:
                return False
            self._relied.add(digest)
            return True

    def claim(self, digest: str) -> bool:
        """Record that this node holds ``digest``; True if the record was new to this process.

        Returns only when no deletion of the blob is in progress, so a blob that exists after
        this call stays until this node releases it. A caller that got True and then fails
        (the blob is absent, its commit failed) takes the record back with ``forget``.
        """
        if self._relied_on(digest):
            return False
        with self._lock(digest):
            if self._relied_on(digest):
                return False
            body = json.dumps({"node": self.node_id, "claimed_at": _now()}).encode()
            self._driver.put(f"{self._dir(digest)}/{self.node_id}", body)
            self._wait_for_deletion(digest)
            with self._claimed_lock:
                self._claimed.add(digest)
            return True

    def forget(self, digest: str) -> None:
        """Take back a record that ``claim`` has just written (True) for a caller that failed,
        without touching the blob. Once another caller has been answered from the hold (its
        ``claim`` found it held), the record stays: that caller's blob relies on it."""
        with self._lock(digest):
            with self._claimed_lock:
                if digest in self._relied:
                    return
                self._claimed.discard(digest)
            self._driver.delete(f"{self._dir(digest)}/{self.node_id}")

    def release(self, digest: str) -> None:
        """Drop this node's hold on ``digest``; delete the blob if no node holds it any more.

        ``NotFoundError`` if this node does not hold the blob.
        """
        own = f"{self._dir(digest)}/{self.node_id}"
        with self._lock(digest):
            try:
                self._driver.head(own)
            except NotFoundError:
                with self._claimed_lock:
                    self._claimed.discard(digest)
                    self._relied.discard(digest)
                msg = f"content {digest} is not held by node {self.node_id}"
                raise NotFoundError(msg) from None
            with self._claimed_lock:
                self._claimed.discard(digest)
                self._relied.discard(digest)
            self._driver.delete(own)
            self._delete_if_unheld(digest)

    def held(self) -> set[str]:
        """Every digest this node holds a record for (one listing of all records)."""
        found: set[str] = set()
        suffix = "/" + self.node_id
        for obj in self._driver.list(self._base + "/"):
            if not obj.key.endswith(suffix):
                continue
            parts = obj.key[len(self._base) + 1 :].split("/")
            if len(parts) == 3 and parts[2] == self.node_id:
                found.add(f"{parts[0]}:{parts[1]}")
        return found

    # -- the deletion protocol ------------------------------------------------------------------

    def _delete_if_unheld(self, digest: str) -> None:
        directory = self._dir(digest)
        marker = f"{directory}/{_MARKER}"
        body = json.dumps({"node": self.node_id, "started_at": _now()}).encode()
        while True:
            try:
                etag = self._driver.put(marker, body, precondition=CREATE_ONLY)
            except AlreadyExistsError:
                self._wait_for_deletion(digest)
                continue
            try:
                holders = [o.key for o in self._driver.list(directory + "/") if o.key != marker]
                if holders:
                    _log.debug("blob kept: still held", extra={"digest": digest})
                    return
                try:
                    self._store.delete(digest)
                    _log.info("blob deleted, no node holds it", extra={"digest": digest})
                except NotFoundError:
                    pass
            finally:
                # A waiter may have judged us dead and removed it already; nothing to undo then.
                with contextlib.suppress(FailedPreconditionError, NotFoundError):
                    self._driver.delete(marker, precondition=IfMatch(etag))
            return

    def _wait_for_deletion(self, digest: str) -> None:
        """Return once no deletion of ``digest`` is in progress (removing a stale marker)."""
        marker = f"{self._dir(digest)}/{_MARKER}"
        delay = 0.05
        while True:
            try:
                obj = self._driver.head(marker)
            except NotFoundError:
                return
            age = (datetime.now(UTC) - obj.modified).total_seconds()
            if age > self._stale_after:
                _log.warning("removing stale deletion marker", extra={"digest": digest})
                with contextlib.suppress(FailedPreconditionError, NotFoundError):
                    self._driver.delete(marker, precondition=IfMatch(obj.etag))
                continue
            self._sleep(delay)
            delay = min(delay * 2, 1.0)


def _now() -> str:
    return datetime.now(UTC).isoformat()
