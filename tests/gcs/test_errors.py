"""The error table and the retry predicate, without a server."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions as api

from cargohold.drivers.gcs_errors import Precondition, is_transient, translate
from cargohold.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    UnauthenticatedError,
    UnavailableError,
)


@pytest.mark.parametrize(
    ("exc", "precondition", "expected"),
    [
        (api.NotFound("x"), Precondition.NONE, NotFoundError),
        (api.PreconditionFailed("x"), Precondition.CREATE_ONLY, AlreadyExistsError),
        (api.PreconditionFailed("x"), Precondition.MATCH, FailedPreconditionError),
        (api.Conflict("x"), Precondition.NONE, AlreadyExistsError),
        (api.BadRequest("x"), Precondition.NONE, InvalidArgumentError),
        (api.Forbidden("x"), Precondition.NONE, PermissionDeniedError),
        (api.Unauthorized("x"), Precondition.NONE, UnauthenticatedError),
        (api.ServiceUnavailable("x"), Precondition.NONE, UnavailableError),
        (api.InternalServerError("x"), Precondition.NONE, UnavailableError),
        (api.TooManyRequests("x"), Precondition.NONE, UnavailableError),
        (api.RetryError("gave up", None), Precondition.NONE, UnavailableError),
        (requests.ConnectionError("refused"), Precondition.NONE, UnavailableError),
        (RuntimeError("?"), Precondition.NONE, ServiceError),
    ],
)
def test_table(exc: Exception, precondition: Precondition, expected: type[Exception]) -> None:
    error = translate(exc, "obj", precondition)
    assert type(error) is expected
    assert "obj" in str(error)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (api.ServiceUnavailable("x"), True),
        (api.TooManyRequests("x"), True),
        (api.GatewayTimeout("x"), True),
        (requests.ConnectionError("x"), True),
        (api.PreconditionFailed("x"), False),
        (api.NotFound("x"), False),
        (api.BadRequest("x"), False),
    ],
)
def test_retry_predicate(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient
