"""Every CLI failure as one line (or one JSON object) on stderr, an exit status and a next step.

Exit statuses: 2 for bad usage (a malformed digest, label, filter, URL or option, a missing input
file), 1 for a failure (missing content, a busy ref, a damaged blob, an unreachable service),
130 after Ctrl-C. Each message ends with what to do next.
"""

from __future__ import annotations

import errno
import json
import re
from dataclasses import dataclass

import click

from .errors import (
    AlreadyExistsError,
    ContentError,
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ServiceError,
    UnavailableError,
)

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CliFailure",
    "Where",
    "emit",
    "failure_for",
    "file_failure",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_SPACES = re.compile(r"\s+")
_USAGE_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG})


class CliFailure(Exception):
    """A failure already described for the user: kind, message, next step, exit status."""

    def __init__(self, kind: str, message: str, hint: str, code: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint
        self.code = code


@dataclass(frozen=True)
class Where:
    """What a command was working on, so that hints can name it."""

    command: str = ""
    ref: str = ""
    digest: str = ""
    on_interrupt: str = ""
    """What to do after Ctrl-C, when it differs from the command's usual advice."""


def _one_line(text: str) -> str:
    """Whitespace runs as one space; other unprintable characters escaped (a NUL, an escape
    sequence or a lone surrogate from an argument must not reach the terminal raw)."""
    flat = _SPACES.sub(" ", text).strip().rstrip(".")
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in flat)


def emit(failure: CliFailure, *, as_json: bool) -> None:
    """Print ``failure`` on stderr: one line of text, or one JSON object with ``--json``."""
    message, hint = _one_line(failure.message), _one_line(failure.hint)
    if as_json:
        body = {"kind": failure.kind, "message": message, "hint": hint, "exit_code": failure.code}
        click.echo(json.dumps({"error": body}), err=True)
        return
    click.echo(f"cargohold: {failure.kind}: {message}" + (f"; {hint}" if hint else ""), err=True)


def file_failure(exc: OSError, path: str, doing: str) -> CliFailure:
    """A local file (input or output) that could not be opened or written."""
    reason = exc.strerror or str(exc)
    code = EXIT_USAGE if exc.errno in _USAGE_ERRNOS else EXIT_FAILURE
    return CliFailure(
        "error",
        f"cannot {doing} {path}: {reason}",
        "check the path and its permissions, then run the command again",
        code,
    )


def _content_hint(exc: ContentError, where: Where) -> tuple[str, str, int]:
    """(kind, hint, exit status) for an error the store raised."""
    ref, digest = where.ref or "REF", where.digest or "DIGEST"
    if isinstance(exc, InvalidArgumentError):
        command = f"cargohold {where.command}" if where.command else "cargohold"
        return "error", f"see '{command} --help'", EXIT_USAGE
    if isinstance(exc, NotFoundError):
        if where.command == "abort":
            return "not found", "list the ingestions in progress with 'cargohold active'", 1
        return "not found", "list what is stored with 'cargohold ls'", 1
    if isinstance(exc, DataLossError):
        return (
            "data loss",
            f"remove the damaged blob with 'cargohold rm {digest}' and ingest the original again",
            1,
        )
    if isinstance(exc, FailedPreconditionError):
        if where.command == "ingest":
            hint = (
                f"the ingestion is kept: run the command again with the right input, --size or "
                f"--expected, or drop it with 'cargohold abort {ref}'"
            )
        else:
            hint = "run the command again; if it fails the same way, see 'cargohold active'"
        return "failed precondition", hint, 1
    if isinstance(exc, UnavailableError):
        if where.command == "ingest":
            hint = (
                f"if another cargohold is writing {ref}, wait for it (the lock of one that died "
                "expires after the store's lease_timeout, 60 s by default); otherwise check "
                "that the store is reachable; then run the same command again"
            )
        else:
            hint = "check that the store is reachable, then run the command again"
        return "unavailable", hint, 1
    if isinstance(exc, AlreadyExistsError):
        return "already exists", "nothing to do: the content is already stored", 1
    if isinstance(exc, ServiceError):
        return (
            "service error",
            "check the store URL, the credentials and their permissions, then run it again",
            1,
        )
    return "error", "run the command again", 1


def failure_for(exc: BaseException, where: Where) -> CliFailure:
    """Describe any exception raised while a command ran."""
    if isinstance(exc, CliFailure):
        return exc
    if isinstance(exc, KeyboardInterrupt | click.exceptions.Abort):
        if where.on_interrupt:
            hint = where.on_interrupt
        elif where.command == "ingest":
            hint = "run the same command again to resume where it stopped"
        else:
            hint = "run the command again to start over"
        return CliFailure("interrupted", "stopped by Ctrl-C", hint, EXIT_INTERRUPTED)
    if isinstance(exc, ContentError):
        kind, hint, code = _content_hint(exc, where)
        return CliFailure(kind, str(exc) or type(exc).__name__, hint, code)
    if isinstance(exc, OSError):
        target = f": {exc.filename}" if exc.filename else ""
        return CliFailure(
            "error",
            f"{exc.strerror or exc}{target}",
            "check that the path exists and that this user may read and write it",
            EXIT_FAILURE,
        )
    return CliFailure(
        "internal error",
        f"{type(exc).__name__}: {exc}",
        "this is a bug in cargohold: set CARGOHOLD_DEBUG=1 to see the traceback, and report it",
        EXIT_FAILURE,
    )
