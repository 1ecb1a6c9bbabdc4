"""Lease-based ref locks that hold across processes and machines sharing one store.

A lease is a small object (``ingest/<hash(ref)>/lock``) created with a create-only write. Its
body names the holder and when the lease expires (holder's clock + timeout). While the writer
lives, one background thread per store renews every lease it holds with a conditional write
(``IfMatch`` the etag it last wrote) every ``timeout / 3`` seconds. A writer that finds a lease
whose expiry has passed takes it over with a conditional write against the etag it read, so of
several would-be takers exactly one wins. Releasing deletes the object (again conditionally).

A holder learns that it lost its lease (taken over after it stalled past the timeout, or removed
by ``abort``) when a renewal's condition fails; its next ``write``/``commit`` then raises
FailedPreconditionError. ``commit`` also renews synchronously before it publishes anything.
Expiry compares the holder's recorded expiry with the reader's clock: hosts sharing a store
must keep their clocks within a small fraction of the timeout (NTP does).

A lease may carry a small JSON *payload* in its body, written with it (the create-only write
that takes it) and kept by every renewal: what an ingestion publishes about itself before it
saves any state of its own (see ``ingest``).

A lease whose holder is known to be gone is taken over at once, without waiting for expiry, so
that re-running a killed or interrupted command does not find its own ref locked: the holder
ran on this machine (same host name, boot and PID namespace) and its process no longer exists,
or it is this very process and no live lease here has that owner.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field

from .drivers.base import CREATE_ONLY, Driver, IfMatch
from .errors import (
    AlreadyExistsError,
    ContentError,
    FailedPreconditionError,
    NotFoundError,
    UnavailableError,
)

__all__ = [
    "DEFAULT_LEASE_TIMEOUT",
    "Lease",
    "LeaseHeldError",
    "LeaseManager",
    "machine_id",
    "read_lease",
    "read_payload",
]

DEFAULT_LEASE_TIMEOUT = 60.0

# Every unreleased lease of this process, whichever manager took it (several stores in one
# process may share a bucket): what tells a lease this process leaked from one it holds.
_LIVE: weakref.WeakValueDictionary[str, Lease] = weakref.WeakValueDictionary()
_ACQUIRING: set[str] = set()
"""Owners of this process whose lease is being written (not yet in ``_LIVE``)."""
_LIVE_LOCK = threading.Lock()


_PAYLOAD = "payload"


def read_lease(driver: Driver, key: str) -> dict[str, object] | None:
    """The body of the lease at ``key`` (holder, host, pid, expiry, payload); None if there is
    no lease at ``key`` or it cannot be read."""
    try:
        body = json.loads(driver.get(key))
    except (NotFoundError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def read_payload(driver: Driver, key: str) -> dict[str, object] | None:
    """The payload the lease at ``key`` publishes; None if there is no lease at ``key``, or
    it carries none (or cannot be read)."""
    payload = (read_lease(driver, key) or {}).get(_PAYLOAD)
    return payload if isinstance(payload, dict) else None


def _machine() -> str:
    """This boot of this machine and this PID namespace ("" where that cannot be known)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        pid_ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}/{pid_ns}"


_MACHINE = _machine()


def machine_id() -> str:
    """This machine's identity as leases record it (boot and PID namespace); "" if unknown,
    in which case no holder is ever known to be gone and only expiry frees a ref."""
    return _MACHINE


def _holder_gone(holder: dict[str, object]) -> bool:
    """Whether the lease holder described by ``holder`` is known not to exist any more."""
    if not _MACHINE or holder.get("machine") != _MACHINE:
        return False
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        owner = str(holder.get("owner"))
        with _LIVE_LOCK:
            if owner in _ACQUIRING:
                return False  # written a moment ago by a writer of ours not yet registered
            live = _LIVE.get(owner)
        return live is None or live.released
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists (not ours to signal)
    return False


class LeaseHeldError(UnavailableError):
    """Another holder has the lease (rather than the store failing to answer)."""


@dataclass
class Lease:
    """A lease this process holds."""

    key: str
    owner: str
    etag: str
    expires: float
    lost: bool = False
    released: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    payload: dict[str, object] | None = None
    """What the holder publishes in the lease's body (an ingestion's first record), kept
    through every renewal; ``read_payload`` reads it from anywhere."""
    previous: dict[str, object] | None = None
    """The payload of the expired (or orphaned) lease this one took over, if it had one."""

    def check(self) -> None:
        """Raise FailedPreconditionError if the lease was lost."""
        if self.lost:
            raise FailedPreconditionError(
                "this writer's ingestion was aborted or taken over by another writer"
            )


class LeaseManager:
    """Acquires, renews and releases leases on one driver."""

    def __init__(self, driver: Driver, timeout: float = DEFAULT_LEASE_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError("lease timeout must be positive")
        self._driver = driver
        self.timeout = timeout
        self._held: weakref.WeakValueDictionary[str, Lease] = weakref.WeakValueDictionary()
        self._held_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def _body(self, owner: str, payload: dict[str, object] | None) -> tuple[bytes, float]:
        expires = time.time() + self.timeout
        body: dict[str, object] = {
            "owner": owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "machine": _MACHINE,
            "expires": expires,
            "timeout": self.timeout,
        }
        if payload is not None:
            body[_PAYLOAD] = payload
        return json.dumps(body).encode(), expires

    def acquire(self, key: str, payload: dict[str, object] | None = None) -> Lease:
        """Take the lease at ``key``, or raise UnavailableError while someone else holds it.

        ``payload`` (JSON-able) goes into the lease's body, in the same create-only write, and
        stays there through renewals (see ``read_payload``).
        """
        owner = uuid.uuid4().hex
        body, expires = self._body(owner, payload)
        previous: dict[str, object] | None = None
        # Until the lease is registered in _LIVE, another writer of this process that finds
        # it must not take it for one whose holder is gone.
        with _LIVE_LOCK:
            _ACQUIRING.add(owner)
        try:
            try:
                etag = self._driver.put(key, body, precondition=CREATE_ONLY)
            except AlreadyExistsError:
                etag, previous = self._take_over(key, body)
            lease = Lease(key, owner, etag, expires, payload=payload, previous=previous)
            with _LIVE_LOCK:
                _LIVE[owner] = lease
        finally:
            with _LIVE_LOCK:
                _ACQUIRING.discard(owner)
        with self._held_lock:
            self._held[owner] = lease
            self._ensure_thread()
        return lease

    def _take_over(self, key: str, body: bytes) -> tuple[str, dict[str, object] | None]:
        previous: dict[str, object] | None = None
        try:
            current = self._driver.head(key)
            holder = json.loads(self._driver.get(key))
            if isinstance(holder, dict) and isinstance(holder.get(_PAYLOAD), dict):
                previous = holder[_PAYLOAD]
            expires = float(holder["expires"])
            if isinstance(holder, dict) and _holder_gone(holder):
                expires = 0.0  # its holder is gone: no need to wait for the expiry
        except NotFoundError:
            # Released between our create and our read: one more create-only attempt.
            try:
                return self._driver.put(key, body, precondition=CREATE_ONLY), None
            except AlreadyExistsError as exc:
                raise LeaseHeldError("the ref is locked by another writer") from exc
        except (ValueError, KeyError, TypeError):
            expires = 0.0  # an unreadable lease counts as expired
        if expires > time.time():
            raise LeaseHeldError(
                f"the ref is locked by another writer (held for up to "
                f"{expires - time.time():.0f}s more unless renewed)"
            )
        try:
            return self._driver.put(key, body, precondition=IfMatch(current.etag)), previous
        except (FailedPreconditionError, AlreadyExistsError) as exc:
            raise LeaseHeldError("the ref was just locked by another writer") from exc

    def set_payload(self, lease: Lease, payload: dict[str, object] | None) -> None:
        """Replace what ``lease``'s body publishes, now (a renewal that carries it)."""
        with lease.lock:
            lease.payload = payload
        self.renew(lease)

    def renew(self, lease: Lease) -> None:
        """Extend ``lease`` now; mark it lost (and raise) if it was taken or removed."""
        with lease.lock:
            if lease.released:
                return
            lease.check()
            body, expires = self._body(lease.owner, lease.payload)
            try:
                lease.etag = self._driver.put(lease.key, body, precondition=IfMatch(lease.etag))
            except (FailedPreconditionError, NotFoundError):
                lease.lost = True
                lease.check()
            lease.expires = expires

    def release(self, lease: Lease) -> None:
        """Give the lease up (a lost or already released lease is left alone)."""
        with lease.lock:
            if lease.released:
                return
            lease.released = True
            if lease.lost:
                return
            self._delete(lease)

    def _delete(self, lease: Lease) -> None:
        """Delete a released lease's object. Tried twice: a lease left behind expires by
        itself, but one whose payload is an ingestion's record would still show that
        ingestion in list_statuses."""
        for _attempt in range(2):
            try:
                self._driver.delete(lease.key, precondition=IfMatch(lease.etag))
            except FailedPreconditionError:
                return  # taken over meanwhile: no longer ours to delete
            except ContentError:
                continue
            return

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._renew_loop, name="cargohold-lease-renewer", daemon=True
            )
            self._thread.start()

    def _renew_loop(self) -> None:
        interval = self.timeout / 3
        while not self._stopped:
            self._wake.wait(interval)
            if self._stopped:
                return
            with self._held_lock:
                leases = [lease for lease in self._held.values() if not lease.released]
            for lease in leases:
                try:
                    self.renew(lease)
                except ContentError:
                    continue  # lost leases are flagged; transient errors retry next round

    def close(self) -> None:
        """Stop renewing (held leases then expire by themselves)."""
        self._stopped = True
        self._wake.set()
