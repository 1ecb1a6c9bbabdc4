"""The errors cargohold raises.

Every error the store raises is a ``ContentError``; the subclasses are the few categories that
containerd's content service (and gRPC) distinguish::

    ContentError
     ├── NotFoundError            (also LookupError)   gRPC NOT_FOUND
     ├── AlreadyExistsError                            gRPC ALREADY_EXISTS
     ├── FailedPreconditionError                       gRPC FAILED_PRECONDITION
     ├── UnavailableError                              gRPC UNAVAILABLE
     ├── InvalidArgumentError     (also ValueError)    gRPC INVALID_ARGUMENT
     ├── DataLossError                                 gRPC DATA_LOSS
     │    (stored bytes that do not hash to their digest, or are cut short)
     └── ServiceError                                  gRPC INTERNAL / UNAVAILABLE
          │ (a permanent failure of the backing service that fits no category above)
          ├── UnauthenticatedError                     gRPC UNAUTHENTICATED
          │    (no credentials, or the service did not accept them)
          └── PermissionDeniedError                    gRPC PERMISSION_DENIED
               (the credentials were accepted but may not do this)

Drivers translate their SDK's exceptions into these with one table each, always chaining the
original (``raise ... from exc``), so callers never need to import an SDK to handle an error.
The driver wrapper then records where an error happened, in one place, on every error a driver
raises: ``operation`` (``put``, ``head``, ...), ``key`` and ``driver`` (its class name).
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "ContentError",
    "DataLossError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ServiceError",
    "UnauthenticatedError",
    "UnavailableError",
]


class ContentError(Exception):
    """Base class of every error raised by cargohold."""

    operation: str | None = None
    """The driver operation that failed (set by the driver wrapper), else None."""
    key: str | None = None
    """The object key it failed on, where there is one."""
    driver: str | None = None
    """The driver that raised it."""

    def where(self) -> str:
        """``"<driver> <operation> <key>"`` for messages, or ``""`` when unknown."""
        return " ".join(part for part in (self.driver, self.operation, self.key) if part)


class NotFoundError(ContentError, LookupError):
    """The blob, ingestion or object does not exist."""


class AlreadyExistsError(ContentError):
    """The blob (or a create-only object) already exists."""


class FailedPreconditionError(ContentError):
    """The operation is not valid in the current state (wrong size or digest, lost lease...)."""


class UnavailableError(ContentError):
    """The resource is busy (a ref locked by another writer) or the service cannot be reached."""


class InvalidArgumentError(ContentError, ValueError):
    """Malformed input: a bad digest, ref, label, filter, fieldpath, offset or URL."""


class DataLossError(ContentError):
    """Stored bytes do not hash to their digest, or end before their recorded size."""


class ServiceError(ContentError):
    """A permanent failure of the backing service that fits no other category."""


class UnauthenticatedError(ServiceError):
    """No credentials were found, or the service did not accept them (the message names the
    credential chain that was searched, never a secret)."""


class PermissionDeniedError(ServiceError):
    """The service accepted the credentials but they may not do this operation."""
