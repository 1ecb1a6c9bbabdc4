"""The one table from azure-core / azure-storage-blob exceptions to cargohold errors.

Azure answers with an HTTP status and an ``x-ms-error-code``; the code is the more precise of
the two, so it is looked up first and the status is the fallback. Two answers depend on what the
request asked for, and the caller says so:

* a create-only write (``If-None-Match: *``) that finds the key taken: Azurite and Azure answer
  409 ``BlobAlreadyExists``, Azure may also answer 412 ``ConditionNotMet``; both are
  ``AlreadyExistsError``. With ``IfMatch`` a 412 is a miss.
* 400 ``InvalidBlockList``: a block named in a commit is not staged (another writer's commit
  discarded it, or its id is stale): ``FailedPreconditionError``.

``TABLE`` is applied by ``drivers/errors.py``, the one helper every driver uses.
"""

from __future__ import annotations

from types import MappingProxyType

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

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
from ..errors import Condition, ErrorTable, Failure
from ..errors import translate as translate_with

__all__ = ["TABLE", "Condition", "translate"]

_BY_CODE: dict[str, type[ContentError]] = {
    "BlobNotFound": NotFoundError,
    "ResourceNotFound": NotFoundError,
    # A missing container is a configuration mistake, not a missing blob: say so loudly.
    "ContainerNotFound": ServiceError,
    "ContainerBeingDeleted": ServiceError,
    "BlobAlreadyExists": AlreadyExistsError,
    "ConditionNotMet": FailedPreconditionError,
    "TargetConditionNotMet": FailedPreconditionError,
    "InvalidBlockList": FailedPreconditionError,
    "PendingCopyOperation": FailedPreconditionError,
    "LeaseIdMissing": FailedPreconditionError,
    "LeaseIdMismatchWithBlobOperation": FailedPreconditionError,
    "BlobArchived": FailedPreconditionError,
    "BlobBeingRehydrated": FailedPreconditionError,
    "InvalidRange": InvalidArgumentError,
    "InvalidMetadata": InvalidArgumentError,
    "MetadataTooLarge": InvalidArgumentError,
    "InvalidBlobOrBlock": InvalidArgumentError,
    "InvalidBlockId": InvalidArgumentError,
    "RequestBodyTooLarge": InvalidArgumentError,
    "InvalidHeaderValue": InvalidArgumentError,
    "OutOfRangeInput": InvalidArgumentError,
    "ServerBusy": UnavailableError,
    "OperationTimedOut": UnavailableError,
    "InternalError": UnavailableError,
    "AuthenticationFailed": UnauthenticatedError,
    "AuthorizationFailure": PermissionDeniedError,
    "AuthorizationPermissionMismatch": PermissionDeniedError,
    "InsufficientAccountPermissions": PermissionDeniedError,
}
CREDENTIAL_HINT = (
    "credentials come from the URL's account_key, sas_token or connection_string options, "
    "AZURE_STORAGE_CONNECTION_STRING, or DefaultAzureCredential with cargohold[azure-identity]"
)

_BY_STATUS: dict[int, type[ContentError]] = {
    400: InvalidArgumentError,
    401: UnauthenticatedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: UnavailableError,
    409: FailedPreconditionError,
    412: FailedPreconditionError,
    413: InvalidArgumentError,
    416: InvalidArgumentError,
    429: UnavailableError,
    500: UnavailableError,
    502: UnavailableError,
    503: UnavailableError,
    504: UnavailableError,
}


def error_code(exc: HttpResponseError) -> str:
    """The service's ``x-ms-error-code`` as a plain string ("" when absent)."""
    code = getattr(exc, "error_code", None)  # set by azure-storage's error handling
    return str(getattr(code, "value", code) or "")


def _read(exc: BaseException) -> Failure:
    """Status and ``x-ms-error-code`` of an answer; a line for a failure without one."""
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        code = error_code(exc)
        detail = f"Azure answered {exc.status_code} {code or exc.reason or ''}".rstrip()
        return Failure(code, exc.status_code, detail)
    if isinstance(exc, ClientAuthenticationError):
        return Failure(detail=f"Azure authentication failed ({type(exc).__name__})")
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return Failure(detail=f"Azure could not be reached ({message})")
    return Failure(detail=f"{type(exc).__name__}: {message}")


TABLE = ErrorTable(
    read=_read,
    by_code=MappingProxyType(_BY_CODE),
    by_status=MappingProxyType(_BY_STATUS),
    by_class=(
        (ClientAuthenticationError, UnauthenticatedError),
        (ServiceRequestError, UnavailableError),
        (ServiceResponseError, UnavailableError),
    ),
    missing_codes=frozenset({"BlobNotFound"}),
    credential_hint=CREDENTIAL_HINT,
)
"""azure-core / azure-storage-blob exceptions → cargohold errors (applied by
``cargohold.drivers.errors``)."""


def translate(exc: BaseException, what: str, condition: Condition = Condition.NONE) -> ContentError:
    """The cargohold error for an SDK exception raised while doing ``what`` (key or action).

    Callers ``raise translate(exc, key) from exc`` so the SDK's exception stays attached.
    """
    return translate_with(exc, TABLE, what, condition=condition)
