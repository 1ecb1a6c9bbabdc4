"""The S3 driver's one error table: botocore exceptions → cargohold errors.

Every S3 call in ``driver.py`` runs inside ``s3_errors(...)``, which re-raises what botocore raised
as a cargohold error, chained (``raise ... from exc``). botocore has already retried throttling,
5xx answers and dropped connections (standard or adaptive retry mode) by the time an error gets
here, so those become ``UnavailableError``.

A 412 (``PreconditionFailed``) or 409 (``ConditionalRequestConflict``, a concurrent conditional
write won the race) means "the key was taken" for a create-only write and "the etag moved" for an
``If-Match`` write. A 404 on an ``If-Match`` write means the object is gone, which for the caller
is the same failed precondition.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import Enum

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

__all__ = ["Condition", "error_code", "s3_errors", "translate"]


class Condition(Enum):
    """What kind of conditional write a call was; it decides what 412/409/404 mean."""

    NONE = "none"
    CREATE_ONLY = "create-only"
    IF_MATCH = "if-match"


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
_CONDITIONAL_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})

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


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def translate(exc: Exception, what: str, condition: Condition = Condition.NONE) -> ContentError:
    """The cargohold error for a botocore (or transport) exception raised while doing ``what``."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc), _status(exc)
        message = f"{what}: {code or status} {exc.response.get('Error', {}).get('Message', '')}"
        if code in _CONDITIONAL_CODES or (status in (409, 412) and condition is not Condition.NONE):
            if condition is Condition.CREATE_ONLY:
                return AlreadyExistsError(f"{what}: the key already exists")
            return FailedPreconditionError(f"{what}: the object's etag does not match")
        if condition is Condition.IF_MATCH and (code in _MISSING_CODES or status == 404):
            return FailedPreconditionError(f"{what}: the object is gone")
        cls = _BY_CODE.get(code)
        if cls is None:
            if status == 404:
                cls = NotFoundError
            elif status == 401:
                cls = UnauthenticatedError
            elif status == 403:
                cls = PermissionDeniedError
            elif status >= 500 or status == 429:
                cls = UnavailableError
            else:
                cls = ServiceError
        if issubclass(cls, UnauthenticatedError | PermissionDeniedError):
            message = f"{message.strip()} ({CREDENTIAL_HINT})"
        return cls(message.strip())
    if isinstance(exc, _TRANSPORT):
        return UnavailableError(f"{what}: S3 could not be reached: {exc}")
    if isinstance(exc, NoCredentialsError):
        return UnauthenticatedError(f"{what}: no AWS credentials found ({CREDENTIAL_HINT})")
    return ServiceError(f"{what}: {exc}")


@contextlib.contextmanager
def s3_errors(what: str, condition: Condition = Condition.NONE) -> Iterator[None]:
    """Run a block of S3 calls, re-raising botocore's exceptions as cargohold errors."""
    try:
        yield
    except (ClientError, BotoCoreError, Urllib3Error, ConnectionError) as exc:
        raise translate(exc, what, condition) from exc
