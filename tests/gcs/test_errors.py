"""The error table and the retry predicate, without a server."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions as api

from cargohold.drivers.gcs.errors import Condition, is_transient, translate
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
        (api.NotFound("x"), Condition.NONE, NotFoundError),
        (api.PreconditionFailed("x"), Condition.CREATE_ONLY, AlreadyExistsError),
        (api.PreconditionFailed("x"), Condition.IF_MATCH, FailedPreconditionError),
        (api.Conflict("x"), Condition.NONE, AlreadyExistsError),
        (api.BadRequest("x"), Condition.NONE, InvalidArgumentError),
        (api.Forbidden("x"), Condition.NONE, PermissionDeniedError),
        (api.Unauthorized("x"), Condition.NONE, UnauthenticatedError),
        (api.ServiceUnavailable("x"), Condition.NONE, UnavailableError),
        (api.InternalServerError("x"), Condition.NONE, UnavailableError),
        (api.TooManyRequests("x"), Condition.NONE, UnavailableError),
        (api.RetryError("gave up", None), Condition.NONE, UnavailableError),
        (requests.ConnectionError("refused"), Condition.NONE, UnavailableError),
        (RuntimeError("?"), Condition.NONE, ServiceError),
    ],
)
def test_table(exc: Exception, precondition: Condition, expected: type[Exception]) -> None:
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
