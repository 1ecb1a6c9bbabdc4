"""Authentication and permission failures have their own errors, with a hint at the credential
chain and never a secret; every driver error says where it happened (operation, key, driver)."""

from __future__ import annotations

import base64
import re

import grpc
import pytest
from azure.core.exceptions import ClientAuthenticationError
from botocore.exceptions import NoCredentialsError
from google.api_core import exceptions as gapi
from google.auth import exceptions as gauth

import cargohold
from cargohold import (
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    UnauthenticatedError,
)
from cargohold.drivers.azure import errors as azure_errors
from cargohold.drivers.gcs import errors as gcs_errors
from cargohold.drivers.s3 import errors as s3_errors
from cargohold.plugin.codes import code_for

from ._driver_helpers import s3_client_error


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (s3_client_error("InvalidAccessKeyId", 403), UnauthenticatedError),
        (s3_client_error("SignatureDoesNotMatch", 403), UnauthenticatedError),
        (s3_client_error("ExpiredToken", 400), UnauthenticatedError),
        (s3_client_error("AccessDenied", 403), PermissionDeniedError),
        (s3_client_error("", 401), UnauthenticatedError),
        (s3_client_error("", 403), PermissionDeniedError),
        (NoCredentialsError(), UnauthenticatedError),
    ],
)
def test_s3_credential_failures(exc: Exception, kind: type[ServiceError]) -> None:
    err = s3_errors.translate(exc, "head blobs/x")
    assert type(err) is kind
    assert "boto3 looks for credentials" in str(err)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (gapi.Unauthorized("no"), UnauthenticatedError),
        (gapi.Forbidden("no"), PermissionDeniedError),
        (gauth.DefaultCredentialsError("none found"), UnauthenticatedError),
        (gauth.RefreshError("expired"), UnauthenticatedError),
    ],
)
def test_gcs_credential_failures(exc: Exception, kind: type[ServiceError]) -> None:
    err = gcs_errors.translate(exc, "head blobs/x")
    assert type(err) is kind
    assert "Application Default Credentials" in str(err)


def test_azure_client_authentication_error() -> None:
    err = azure_errors.translate(ClientAuthenticationError("bad"), "head blobs/x")
    assert type(err) is UnauthenticatedError
    assert "DefaultAzureCredential" in str(err)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
        (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_grpc_codes(kind: type[ServiceError], code: grpc.StatusCode) -> None:
    assert code_for(kind("x")) is code


def test_a_wrong_azure_key_is_refused_with_a_hint_and_no_secret(
    azure_container: str, azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against Azurite: a wrong account key is refused with 403. (Azure says AuthenticationFailed;
    Azurite says AuthorizationFailure, which on Azure means a permission or network rule.)"""
    wrong = base64.b64encode(b"not the key at all, really not" * 2).decode()
    bad = re.sub(r"AccountKey=[^;]+", f"AccountKey={wrong}", azurite_connection_string)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", bad)
    store = cargohold.open_store(f"az://{azure_container}/store")
    try:
        with pytest.raises((UnauthenticatedError, PermissionDeniedError)) as caught:
            store.info("sha256:" + "0" * 64)
    finally:
        store.close()
    message = str(caught.value)
    assert wrong not in message
    assert "connection_string" in message  # the hint at where credentials come from
    driver_error = caught.value.__cause__ if caught.value.operation is None else caught.value
    assert isinstance(driver_error, UnauthenticatedError | PermissionDeniedError)
    assert driver_error.operation == "head"
    assert driver_error.driver == "AzureDriver"


def test_driver_errors_say_where_they_happened() -> None:
    with cargohold.open_store("memory://where/store") as store:
        with pytest.raises(NotFoundError) as caught:
            store.driver.get("store/nothing/here")
        assert (caught.value.operation, caught.value.key) == ("get", "store/nothing/here")
        assert caught.value.driver == "MemoryDriver"
        assert caught.value.where() == "MemoryDriver get store/nothing/here"
