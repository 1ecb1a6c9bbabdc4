"""The GCS driver's commit claim: what makes a create-only compose or rewrite atomic."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from ...errors import AlreadyExistsError, FailedPreconditionError, NotFoundError
from ..base import CREATE_ONLY, Driver, IfMatch

__all__ = ["CommitClaim"]


class CommitClaim:
    """A create-only marker held while a server-side create-only write into ``key`` runs.

    GCS enforces ``ifGenerationMatch=0`` on compose and rewrite, but fake-gcs-server does not;
    there (``create_only=claim``, the default against an emulator) the claim is a create-only
    multipart upload, which the emulator does enforce atomically, so the commit's atomicity
    rests on it. A claim older than ``claim_timeout`` belongs to a dead holder and
    is taken over (with ``ifGenerationMatch`` on the claim itself).
    """

    def __init__(
        self,
        driver: Driver,
        key: str,
        name: str,
        timeout: float,
        exists: Callable[[str], bool],
    ) -> None:
        self._driver = driver
        self._key = key
        self._name = name
        self._timeout = timeout
        self._exists = exists
        self._etag: str | None = None

    def __enter__(self) -> CommitClaim:
        driver = self._driver
        timeout = self._timeout
        deadline = time.monotonic() + timeout * 2
        delay = 0.05
        while True:
            try:
                self._etag = driver.put(self._name, b"", precondition=CREATE_ONLY)
            except AlreadyExistsError:
                pass
            else:
                if self._exists(self._key):
                    self._release()
                    raise AlreadyExistsError(f"{self._key} already exists")
                return self
            if self._exists(self._key):
                raise AlreadyExistsError(f"{self._key} already exists")
            try:
                held = driver.head(self._name)
            except NotFoundError:
                continue
            age = (datetime.now(UTC) - held.modified).total_seconds()
            if age > timeout:
                try:
                    self._etag = driver.put(self._name, b"", precondition=IfMatch(held.etag))
                except FailedPreconditionError:
                    continue
                return self
            if time.monotonic() > deadline:
                raise FailedPreconditionError(f"{self._key}: another commit is still running")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _release(self) -> None:
        if self._etag is not None:
            self._driver.delete(self._name, precondition=IfMatch(self._etag))
            self._etag = None

    def __exit__(self, *exc: object) -> None:
        # Taken over by someone who found it stale: the claim is theirs now.
        with contextlib.suppress(FailedPreconditionError):
            self._release()
