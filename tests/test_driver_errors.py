"""The one error-mapping helper (cargohold.drivers.errors) and every driver's table through it."""

from __future__ import annotations

import errno
from types import MappingProxyType

import pytest
from azure.core.exceptions import HttpResponseError
from google.api_core import exceptions as gapi

from cargohold.drivers import local
from cargohold.drivers.azure import errors as azure_errors
from cargohold.drivers.base import CREATE_ONLY, IfMatch
from cargohold.drivers.errors import Condition, ErrorTable, Failure, raise_translated, translate
from cargohold.drivers.gcs import errors as gcs_errors
from cargohold.drivers.s3 import errors as s3_errors
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

from ._driver_helpers import s3_client_error


class _SdkError(Exception):
    def __init__(self, code: str = "", status: int | None = None) -> None:
        super().__init__(f"{code} {status}")
        self.code, self.status = code, status


class _Timeout(Exception):
    pass


TABLE = ErrorTable(
    read=lambda exc: Failure(getattr(exc, "code", ""), getattr(exc, "status", None), f"said {exc}"),
    by_code=MappingProxyType({"Missing": NotFoundError, "Odd": InvalidArgumentError}),
    by_status=MappingProxyType({400: InvalidArgumentError, 403: PermissionDeniedError}),
    by_class=((_Timeout, UnavailableError),),
    conditional_codes=frozenset({"Precondition"}),
    conditional_statuses=frozenset({409, 412}),
    credential_hint="look in ~/.creds",
)


@pytest.mark.parametrize(
    ("exc", "condition", "kind"),
    [
        (_SdkError("Precondition", 412), Condition.NONE, FailedPreconditionError),
        (_SdkError("Precondition", 412), Condition.CREATE_ONLY, AlreadyExistsError),
        (_SdkError("", 409), Condition.CREATE_ONLY, AlreadyExistsError),
        (_SdkError("", 409), Condition.IF_MATCH, FailedPreconditionError),
        (_SdkError("", 409), Condition.NONE, ServiceError),  # a status counts only with one
        (_SdkError("", 404), Condition.IF_MATCH, FailedPreconditionError),
        (_SdkError("", 404), Condition.NONE, ServiceError),
        (_SdkError("Missing", 404), Condition.NONE, NotFoundError),
        (_SdkError("Odd", 403), Condition.NONE, InvalidArgumentError),  # the code before status
        (_SdkError("", 400), Condition.NONE, InvalidArgumentError),
        (_SdkError("", 503), Condition.NONE, UnavailableError),
        (_SdkError("", 429), Condition.NONE, UnavailableError),
        (_Timeout(), Condition.NONE, UnavailableError),
        (RuntimeError("?"), Condition.NONE, ServiceError),
    ],
)
def test_lookup_order(exc: Exception, condition: Condition, kind: type[ContentError]) -> None:
    error = translate(exc, TABLE, "put k", condition=condition)
    assert type(error) is kind
    assert str(error).startswith("put k: ")


def test_hints_only_on_credential_errors() -> None:
    assert "(look in ~/.creds)" in str(translate(_SdkError("", 403), TABLE, "get k"))
    assert "creds" not in str(translate(_SdkError("", 400), TABLE, "get k"))


def test_content_errors_pass_through_and_results_are_chained() -> None:
    mine = NotFoundError("already ours")
    assert translate(mine, TABLE, "x") is mine
    cause = _SdkError("Missing")
    with pytest.raises(NotFoundError) as caught:
        raise_translated(cause, TABLE, "get k")
    assert caught.value.__cause__ is cause


def test_condition_of_a_precondition() -> None:
    assert Condition.of(None) is Condition.NONE
    assert Condition.of(CREATE_ONLY) is Condition.CREATE_ONLY
    assert Condition.of(IfMatch("e")) is Condition.IF_MATCH


def _azure(code: str, status: int) -> HttpResponseError:
    exc = HttpResponseError(message=code)
    exc.status_code, exc.error_code = status, code  # type: ignore[assignment]
    return exc


@pytest.mark.parametrize(
    "gone",
    [
        lambda: s3_errors.translate(s3_client_error("NoSuchKey", 404), "put k", Condition.IF_MATCH),
        lambda: gcs_errors.translate(gapi.NotFound("no"), "put k", Condition.IF_MATCH),
        lambda: azure_errors.translate(_azure("BlobNotFound", 404), "put k", Condition.IF_MATCH),
    ],
)
def test_every_table_reads_a_gone_object_under_if_match_as_a_failed_precondition(
    gone: object,
) -> None:
    assert type(gone()) is FailedPreconditionError  # type: ignore[operator]


@pytest.mark.parametrize(
    "taken",
    [
        lambda: s3_errors.translate(
            s3_client_error("PreconditionFailed", 412), "put k", Condition.CREATE_ONLY
        ),
        lambda: gcs_errors.translate(gapi.PreconditionFailed("x"), "put k", Condition.CREATE_ONLY),
        lambda: azure_errors.translate(
            _azure("ConditionNotMet", 412), "put k", Condition.CREATE_ONLY
        ),
        lambda: azure_errors.translate(_azure("BlobAlreadyExists", 409), "put k"),
    ],
)
def test_every_table_reads_a_taken_key_as_already_exists(taken: object) -> None:
    assert type(taken()) is AlreadyExistsError  # type: ignore[operator]


def test_local_table() -> None:
    gone = FileNotFoundError(errno.ENOENT, "No such file or directory")
    error = local.TABLE.read(gone)
    assert error.code == "ENOENT"
    assert type(translate(gone, local.TABLE, "get k")) is NotFoundError
    assert type(translate(PermissionError(errno.EACCES, "no"), local.TABLE, "x")) is (
        PermissionDeniedError
    )
    assert type(translate(OSError(errno.EIO, "io"), local.TABLE, "x")) is ServiceError
