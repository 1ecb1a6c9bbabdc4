"""The one way drivers turn what their SDK raised into cargohold errors.

Each driver keeps one ``ErrorTable``: how to read a failure out of its SDK's exceptions (an
error code, an HTTP status, a line of detail) and which cargohold error each code, status or
exception class becomes. ``translate`` applies a table the same way for every driver, and the
driver raises the result chained to the SDK's exception (``raise ... from exc``; or
``raise_translated``). Lookup order:

1. a failed precondition: a code the table lists as conditional, or a status it lists as
   conditional on a request that carried one, is ``AlreadyExistsError`` for a create-only
   write and ``FailedPreconditionError`` otherwise;
2. an ``IfMatch`` write whose object is gone (404, or a "missing" code) is
   ``FailedPreconditionError``, as ``drivers/base.py`` promises;
3. the code, then the status, then the exception's class (first match, so subclasses first);
4. any other 5xx or 429 is ``UnavailableError``; the rest ``ServiceError``.

``UnauthenticatedError`` and ``PermissionDeniedError`` carry the table's hint at where the SDK
looks for credentials (never a secret).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NoReturn

from ..errors import (
    AlreadyExistsError,
    ContentError,
    FailedPreconditionError,
    PermissionDeniedError,
    ServiceError,
    UnauthenticatedError,
    UnavailableError,
)
from .base import CREATE_ONLY, IfMatch, Precondition

__all__ = ["Condition", "ErrorTable", "Failure", "classify", "raise_translated", "translate"]

_ErrorClass = type[ContentError]


class Condition(enum.Enum):
    """Which precondition a request carried; it decides what a 409/412/404 answer means."""

    NONE = "none"
    CREATE_ONLY = "create-only"
    IF_MATCH = "if-match"

    @classmethod
    def of(cls, precondition: Precondition | None) -> Condition:
        """The condition a driver call's ``precondition`` argument puts on its request."""
        if precondition is CREATE_ONLY:
            return cls.CREATE_ONLY
        if isinstance(precondition, IfMatch):
            return cls.IF_MATCH
        return cls.NONE


@dataclass(frozen=True)
class Failure:
    """What one SDK exception says, read by a table's ``read``."""

    code: str = ""
    """The service's error code (or the SDK's exception name where the service gives none)."""
    status: int | None = None
    """The HTTP status, when the service answered."""
    detail: str = ""
    """The error message after ``"<what>: "``."""


def _no_codes() -> Mapping[str, _ErrorClass]:
    return MappingProxyType({})


def _no_statuses() -> Mapping[int, _ErrorClass]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ErrorTable:
    """One driver's error table (see the module docstring for how it is applied)."""

    read: Callable[[BaseException], Failure]
    by_code: Mapping[str, _ErrorClass] = field(default_factory=_no_codes)
    by_status: Mapping[int, _ErrorClass] = field(default_factory=_no_statuses)
    by_class: tuple[tuple[type[BaseException], _ErrorClass], ...] = ()
    conditional_codes: frozenset[str] = frozenset()
    """Codes that always mean a failed precondition."""
    conditional_statuses: frozenset[int] = frozenset({412})
    """Statuses that mean a failed precondition when the request carried one."""
    missing_codes: frozenset[str] = frozenset()
    """Codes (besides status 404) that mean the object is not there."""
    credential_hint: str = ""


def classify(
    table: ErrorTable, exc: BaseException, failure: Failure, condition: Condition
) -> tuple[_ErrorClass, str | None]:
    """The error class for ``failure``, and a fixed message for a precondition outcome."""
    conditional = failure.code in table.conditional_codes or (
        condition is not Condition.NONE and failure.status in table.conditional_statuses
    )
    if conditional:
        if condition is Condition.CREATE_ONLY:
            return AlreadyExistsError, "the key already exists"
        return FailedPreconditionError, "the object's etag does not match"
    if condition is Condition.IF_MATCH and (
        failure.status == 404 or failure.code in table.missing_codes
    ):
        return FailedPreconditionError, "the object is gone"
    kind = table.by_code.get(failure.code) if failure.code else None
    if kind is None and failure.status is not None:
        kind = table.by_status.get(failure.status)
    if kind is None:
        kind = next((k for cls, k in table.by_class if isinstance(exc, cls)), None)
    if (
        kind is None
        and failure.status is not None
        and (failure.status >= 500 or failure.status == 429)
    ):
        kind = UnavailableError
    return kind or ServiceError, None


def translate(
    exc: BaseException, table: ErrorTable, what: str, *, condition: Condition = Condition.NONE
) -> ContentError:
    """The cargohold error for ``exc``, raised while doing ``what`` (a key or an action).

    A cargohold error passes through unchanged. Callers ``raise translate(...) from exc``.
    """
    if isinstance(exc, ContentError):
        return exc
    failure = table.read(exc)
    kind, fixed = classify(table, exc, failure, condition)
    message = f"{what}: {fixed or failure.detail}".rstrip()
    if table.credential_hint and issubclass(kind, UnauthenticatedError | PermissionDeniedError):
        message += f" ({table.credential_hint})"
    return kind(message)


def raise_translated(
    exc: BaseException, table: ErrorTable, what: str, *, condition: Condition = Condition.NONE
) -> NoReturn:
    """Raise ``translate(exc, ...)`` chained to ``exc``."""
    raise translate(exc, table, what, condition=condition) from exc
