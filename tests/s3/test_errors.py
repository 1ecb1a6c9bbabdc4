"""The S3 error table, one botocore error at a time (no server needed)."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from cargohold.drivers.s3.errors import Condition, s3_errors, translate
from cargohold.errors import (
    AlreadyExistsError,
    ContentError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    UnavailableError,
)

from .._driver_helpers import s3_client_error


@pytest.mark.parametrize(
    ("code", "status", "condition", "expected"),
    [
        ("PreconditionFailed", 412, Condition.CREATE_ONLY, AlreadyExistsError),
        ("PreconditionFailed", 412, Condition.IF_MATCH, FailedPreconditionError),
        ("ConditionalRequestConflict", 409, Condition.CREATE_ONLY, AlreadyExistsError),
        ("ConditionalRequestConflict", 409, Condition.IF_MATCH, FailedPreconditionError),
        ("412", 412, Condition.CREATE_ONLY, AlreadyExistsError),
        ("NoSuchKey", 404, Condition.IF_MATCH, FailedPreconditionError),
        ("NoSuchKey", 404, Condition.NONE, NotFoundError),
        ("404", 404, Condition.NONE, NotFoundError),
        ("NoSuchUpload", 404, Condition.NONE, NotFoundError),
        ("InvalidPart", 400, Condition.CREATE_ONLY, FailedPreconditionError),
        ("InvalidPartOrder", 400, Condition.NONE, FailedPreconditionError),
        ("EntityTooSmall", 400, Condition.NONE, FailedPreconditionError),
        ("InvalidArgument", 400, Condition.NONE, InvalidArgumentError),
        ("SlowDown", 503, Condition.NONE, UnavailableError),
        ("InternalError", 500, Condition.NONE, UnavailableError),
        ("", 502, Condition.NONE, UnavailableError),
        ("AccessDenied", 403, Condition.NONE, PermissionDeniedError),
        ("NoSuchBucket", 404, Condition.NONE, ServiceError),
    ],
)
def test_client_errors(
    code: str, status: int, condition: Condition, expected: type[ContentError]
) -> None:
    assert type(translate(s3_client_error(code, status), "op", condition)) is expected


def test_transport_errors_are_unavailable() -> None:
    assert isinstance(
        translate(EndpointConnectionError(endpoint_url="http://x"), "op"), UnavailableError
    )
    assert isinstance(translate(ReadTimeoutError(endpoint_url="http://x"), "op"), UnavailableError)


def test_errors_are_chained() -> None:
    original = s3_client_error("NoSuchKey", 404)
    with pytest.raises(NotFoundError) as caught, s3_errors("get k"):
        raise original
    assert caught.value.__cause__ is original
    assert "get k" in str(caught.value)
