"""cargohold errors → gRPC status codes: the one table the plugin answers errors with.

containerd turns these codes back into its own error kinds (``errdefs``), so the mapping is
what makes, say, a missing blob a ``not found`` inside containerd. Anything that is not a
known cargohold error is a bug or an outage: it becomes INTERNAL and its traceback is logged,
and the RPC still ends with a status (a stream is never just dropped).
"""

from __future__ import annotations

import logging

import grpc

from ..errors import (
    AlreadyExistsError,
    ContentError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    UnauthenticatedError,
    UnavailableError,
)

__all__ = ["OutOfRangeError", "code_for", "status_for"]

_log = logging.getLogger("cargohold.plugin")


class OutOfRangeError(InvalidArgumentError):
    """A WRITE at an offset other than the ingestion's current one (containerd: OUT_OF_RANGE)."""


# Order matters: the first class an error is an instance of wins (subclasses before bases).
_TABLE: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (OutOfRangeError, grpc.StatusCode.OUT_OF_RANGE),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (ServiceError, grpc.StatusCode.INTERNAL),
    (ContentError, grpc.StatusCode.INTERNAL),
)


def code_for(exc: BaseException) -> grpc.StatusCode:
    """The gRPC code for an exception; INTERNAL for anything the table does not name."""
    for kind, code in _TABLE:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def status_for(exc: BaseException, method: str) -> tuple[grpc.StatusCode, str]:
    """Code and message to end an RPC with; logs unexpected errors with their traceback."""
    if isinstance(exc, grpc.RpcError):
        # Raised by a request stream whose client cancelled or went away: not a fault here,
        # and the writer was closed (not aborted), so the ingestion stays resumable.
        _log.info("%s: the client went away", method, extra={"rpc": method, "code": "CANCELLED"})
        return grpc.StatusCode.CANCELLED, "the client cancelled the call"
    code = code_for(exc)
    if isinstance(exc, ContentError) and code is not grpc.StatusCode.INTERNAL:
        _log.debug("%s failed: %s", method, exc, extra={"rpc": method, "code": code.name})
        return code, str(exc) or type(exc).__name__
    _log.error(
        "%s failed unexpectedly", method, exc_info=exc, extra={"rpc": method, "code": code.name}
    )
    return code, f"{type(exc).__name__}: {exc}"
