"""The one table from google-cloud-storage / google-api-core exceptions to cargohold errors.

HTTP 412 means different things depending on the precondition a request carried, so the caller
says which one it sent (``Condition``, shared by every driver): a create-only write
(``ifGenerationMatch=0``) that meets 412 found the key taken (``AlreadyExistsError``); a write
guarded by an etag (``ifGenerationMatch=<g>`` / ``ifMetagenerationMatch=<m>``) found another
version, or no object (``FailedPreconditionError``). ``TABLE`` is applied by
``drivers/errors.py``, the one helper every driver uses.

Also here: the retry predicate, i.e. which failures are transient. The driver passes an explicit
``Retry`` to every SDK call, conditional ones included, so this predicate is the whole policy.
"""

from __future__ import annotations

from types import MappingProxyType
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
    UnauthenticatedError,
    UnavailableError,
)
from ..errors import Condition, ErrorTable, Failure
from ..errors import translate as translate_with

__all__ = ["TABLE", "Condition", "is_transient", "raise_translated", "translate"]


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


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else ""
    return f"{type(exc).__name__}: {first_line}"[:300]


def _read(exc: BaseException) -> Failure:
    """The exception's class name as its code (GCS answers carry no finer one), its status."""
    status = exc.code if isinstance(exc, api.GoogleAPICallError) else None
    return Failure(type(exc).__name__, status if isinstance(status, int) else None, _describe(exc))


TABLE = ErrorTable(
    read=_read,
    by_code=MappingProxyType({"NotModified": FailedPreconditionError}),
    by_class=_TABLE,
    conditional_codes=frozenset({"PreconditionFailed"}),
    missing_codes=frozenset({"NotFound"}),
    credential_hint=CREDENTIAL_HINT,
)
"""google-cloud-storage exceptions → cargohold errors (applied by ``cargohold.drivers.errors``)."""


def translate(exc: BaseException, what: str, condition: Condition = Condition.NONE) -> ContentError:
    """The cargohold error for an SDK exception raised while working on ``what``."""
    return translate_with(exc, TABLE, what, condition=condition)


def raise_translated(
    exc: BaseException, what: str, condition: Condition = Condition.NONE
) -> NoReturn:
    """Raise ``translate(exc, ...)`` chained to ``exc``."""
    raise translate(exc, what, condition) from exc
