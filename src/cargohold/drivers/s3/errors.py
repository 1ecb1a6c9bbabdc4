"""The S3 driver's one error table: botocore exceptions → cargohold errors.

Every S3 call in ``driver.py`` runs inside ``s3_errors(...)``, which re-raises what botocore raised
as a cargohold error, chained (``raise ... from exc``). botocore has already retried throttling,
5xx answers and dropped connections (standard or adaptive retry mode) by the time an error gets
here, so those become ``UnavailableError``.

A 412 (``PreconditionFailed``) or 409 (``ConditionalRequestConflict``, a concurrent conditional
write won the race) means "the key was taken" for a create-only write and "the etag moved" for an
``If-Match`` write. A 404 on an ``If-Match`` write means the object is gone, which for the caller
is the same failed precondition. The table (``TABLE``) is applied by ``drivers/errors.py``, the
one helper every driver uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import MappingProxyType

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from urllib3.exceptions import HTTPError as Urllib3Error

from ...errors import (
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

__all__ = ["TABLE", "Condition", "error_code", "s3_errors", "translate"]

# error code → error class; conditional codes are handled before this table.
_BY_CODE: dict[str, type[ContentError]] = {
    "NoSuchKey": NotFoundError,
    "NotFound": NotFoundError,
    "404": NotFoundError,
    "NoSuchUpload": NotFoundError,
    "NoSuchBucket": ServiceError,
    "InvalidPart": FailedPreconditionError,
    "InvalidPartOrder": FailedPreconditionError,
    "EntityTooSmall": FailedPreconditionError,
    "InvalidArgument": InvalidArgumentError,
    "InvalidRequest": InvalidArgumentError,
    "MalformedXML": InvalidArgumentError,
    "KeyTooLongError": InvalidArgumentError,
    "MetadataTooLarge": InvalidArgumentError,
    "EntityTooLarge": InvalidArgumentError,
    "InvalidStorageClass": InvalidArgumentError,
    "InvalidEncryptionAlgorithmError": InvalidArgumentError,
    "NotImplemented": ServiceError,
    "SlowDown": UnavailableError,
    "Throttling": UnavailableError,
    "ThrottlingException": UnavailableError,
    "RequestTimeout": UnavailableError,
    "ServiceUnavailable": UnavailableError,
    "InternalError": UnavailableError,
    "InvalidAccessKeyId": UnauthenticatedError,
    "SignatureDoesNotMatch": UnauthenticatedError,
    "ExpiredToken": UnauthenticatedError,
    "InvalidToken": UnauthenticatedError,
    "TokenRefreshRequired": UnauthenticatedError,
    "AccessDenied": PermissionDeniedError,
    "AllAccessDisabled": PermissionDeniedError,
    "AccountProblem": PermissionDeniedError,
}
CREDENTIAL_HINT = (
    "boto3 looks for credentials in the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE), the "
    "shared config and credentials files, then container and instance roles"
)

# Transport failures that survived botocore's retries.
_TRANSPORT = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    HTTPClientError,
    ResponseStreamingError,
    Urllib3Error,
    ConnectionError,
)


def error_code(exc: ClientError) -> str:
    """The S3 error code of a ClientError (``"404"`` style for bodiless HEAD answers)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _read(exc: BaseException) -> Failure:
    """Code, status and message of a botocore ClientError; a line for anything else."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) or None
        text = exc.response.get("Error", {}).get("Message", "")
        return Failure(code, status, f"{code or status} {text}".strip())
    if isinstance(exc, _TRANSPORT):
        return Failure(detail=f"S3 could not be reached: {exc}")
    if isinstance(exc, NoCredentialsError):
        return Failure(detail="no AWS credentials found")
    return Failure(detail=str(exc))


TABLE = ErrorTable(
    read=_read,
    by_code=MappingProxyType(_BY_CODE),
    by_status=MappingProxyType(
        {404: NotFoundError, 401: UnauthenticatedError, 403: PermissionDeniedError}
    ),
    by_class=(
        *((cls, UnavailableError) for cls in _TRANSPORT),
        (NoCredentialsError, UnauthenticatedError),
    ),
    conditional_codes=frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"}),
    conditional_statuses=frozenset({409, 412}),
    missing_codes=frozenset({"NoSuchKey", "NotFound", "404"}),
    credential_hint=CREDENTIAL_HINT,
)
"""botocore exceptions → cargohold errors (applied by ``cargohold.drivers.errors``)."""


def translate(exc: BaseException, what: str, condition: Condition = Condition.NONE) -> ContentError:
    """The cargohold error for a botocore (or transport) exception raised while doing ``what``."""
    return translate_with(exc, TABLE, what, condition=condition)


@contextlib.contextmanager
def s3_errors(what: str, condition: Condition = Condition.NONE) -> Iterator[None]:
    """Run a block of S3 calls, re-raising botocore's exceptions as cargohold errors."""
    try:
        yield
    except (ClientError, BotoCoreError, Urllib3Error, ConnectionError) as exc:
        raise translate(exc, what, condition) from exc
