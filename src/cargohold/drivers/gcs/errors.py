"""The one table from google-cloud-storage / google-api-core exceptions to cargohold errors.

HTTP 412 means different things depending on the precondition a request carried, so the caller
says which one it sent (``Condition``): a create-only write (``ifGenerationMatch=0``) that
meets 412 found the key taken (``AlreadyExistsError``); a write guarded by an etag
(``ifGenerationMatch=<g>`` / ``ifMetagenerationMatch=<m>``) found another version
(``FailedPreconditionError``).

Also here: the retry predicate, i.e. which failures are transient. The driver passes an explicit
``Retry`` to every SDK call, conditional ones included, so this predicate is the whole policy.
"""

from __future__ import annotations

import enum
from typing import NoReturn

import requests
from google.api_core import exceptions as api
from google.auth import exceptions as auth

from ...errors import (
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

__all__ = ["Condition", "is_transient", "raise_translated", "translate"]


class Condition(enum.Enum):
    """Which precondition a request carried, to read a 412 answer."""

    NONE = "none"
    CREATE_ONLY = "create-only"
    MATCH = "match"


_TRANSIENT_API = (
    api.TooManyRequests,  # 429
    api.InternalServerError,  # 500
    api.BadGateway,  # 502
    api.ServiceUnavailable,  # 503
    api.GatewayTimeout,  # 504
)
# 408 has no dedicated class in google-api-core; it is matched by code.
_TRANSIENT_CODES = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_TRANSPORT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    ConnectionError,
    TimeoutError,
    auth.TransportError,
)

# (SDK exception class, cargohold error class); the first match wins, so subclasses go first.
_TABLE: tuple[tuple[type[BaseException], type[ContentError]], ...] = (
    (api.NotFound, NotFoundError),
    (api.Conflict, AlreadyExistsError),
    (api.BadRequest, InvalidArgumentError),
    (api.LengthRequired, InvalidArgumentError),
    (api.Unauthorized, UnauthenticatedError),
    (api.Forbidden, PermissionDeniedError),
    (api.RetryError, UnavailableError),
    (api.ServerError, UnavailableError),
    (api.TooManyRequests, UnavailableError),
    (auth.DefaultCredentialsError, UnauthenticatedError),
    (auth.RefreshError, UnauthenticatedError),
    *((cls, UnavailableError) for cls in _TRANSIENT_TRANSPORT),
)


def is_transient(exc: BaseException) -> bool:
    """Whether a failed request may succeed if sent again (the driver's retry predicate)."""
    if isinstance(exc, _TRANSIENT_API):
        return True
    code = getattr(exc, "code", None)
    if isinstance(exc, api.GoogleAPICallError) and code in _TRANSIENT_CODES:
        return True
    return isinstance(exc, _TRANSIENT_TRANSPORT)


CREDENTIAL_HINT = (
    "google-cloud-storage uses Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, "
    "then `gcloud auth application-default login`, then the metadata server"
)


def translate(exc: BaseException, what: str, condition: Condition = Condition.NONE) -> ContentError:
    """The cargohold error for an SDK exception raised while working on ``what``."""
    if isinstance(exc, ContentError):
        return exc
    if isinstance(exc, api.PreconditionFailed):
        if condition is Condition.CREATE_ONLY:
            return AlreadyExistsError(f"{what} already exists")
        return FailedPreconditionError(f"{what}: generation does not match")
    if isinstance(exc, api.NotModified):
        return FailedPreconditionError(f"{what}: generation does not match")
    for sdk_class, error_class in _TABLE:
        if isinstance(exc, sdk_class):
            message = f"{what}: {_describe(exc)}"
            if issubclass(error_class, UnauthenticatedError | PermissionDeniedError):
                message += f" ({CREDENTIAL_HINT})"
            return error_class(message)
    return ServiceError(f"{what}: {_describe(exc)}")


def raise_translated(
    exc: BaseException, what: str, condition: Condition = Condition.NONE
) -> NoReturn:
    """Raise ``translate(exc, ...)`` chained to ``exc``."""
    raise translate(exc, what, condition) from exc


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else ""
    return f"{type(exc).__name__}: {first_line}"[:300]
