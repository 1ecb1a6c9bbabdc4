"""``~=`` patterns: Go ``regexp`` syntax and semantics, matched by RE2 (google-re2).

containerd compiles a ``~=`` value with Go's ``regexp.Compile`` and tests it with ``MatchString``
(an unanchored search). Go's ``regexp`` is a port of RE2, so RE2's own Python bindings give the
same matches in time linear in the input. ``compile_go_regex`` closes the few gaps between RE2's
C++ syntax and Go's:

- ``\\C`` (any byte) exists only in C++: rejected, as Go rejects it.
- Capture names must be ASCII letters, digits and ``_`` (C++ also takes other Unicode letters).
- A pattern that is not valid UTF-8 (a ``\\xff`` escape in the filter's quotes) is rejected.
- Groups may nest at most ``MAX_NESTING`` deep (C++ has no limit). Go refuses a parse tree over
  1000 high, which groups this shallow cannot reach in a filter of at most 16 KiB (each level
  adds at most four nodes, prefix factoring at most a few hundred); deeper ones that Go would
  take are refused here: a simpler, stricter rule than Go's.

What remains different, and why:

- Unicode tables are RE2's (Unicode 15 or later); Go's follow its release (Go 1.19 has Unicode
  13, so ``\\p{Kawi}`` is valid here and in recent Go, invalid in Go 1.19).
- ``(?<name>...)`` is accepted, as Go accepts it from 1.22 on (older Go only takes ``(?P<``).
- RE2 compiles within a memory budget (``MAX_REGEX_MEMORY``); a pattern that does not fit, such
  as ``\\pL{500}``, is rejected with InvalidArgumentError where Go would accept it.

Values are matched as Go sees a string: every lone surrogate in a Python ``str`` (an undecodable
byte kept by ``surrogateescape``) reads as U+FFFD, as Go reads each invalid UTF-8 byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]

from cargohold.errors import InvalidArgumentError

__all__ = ["MAX_NESTING", "MAX_REGEX_MEMORY", "GoRegex", "compile_go_regex"]

MAX_NESTING = 100
"""Deepest nesting of groups (``(`` inside ``(``) a pattern may use."""
MAX_REGEX_MEMORY = 8 << 20
"""RE2's memory budget for one compiled pattern (its program and its DFA cache), in bytes."""

_CAPTURE_NAME_CHARS = frozenset("_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOO_LARGE = "pattern too large"


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every rejected pattern to stderr
    options.max_mem = MAX_REGEX_MEMORY
    return options


_OPTIONS = _options()


@dataclass(frozen=True)
class GoRegex:
    """A compiled ``~=`` pattern."""

    pattern: str
    _regex: Any

    def search(self, value: str) -> bool:
        """Whether the pattern matches anywhere in ``value`` (Go's ``MatchString``)."""
        try:
            data = value.encode()
        except UnicodeEncodeError:  # lone surrogates: read each as U+FFFD, as Go does
            data = _as_go_sees(value).encode()
        return self._regex.search(data) is not None


def compile_go_regex(pattern: str) -> GoRegex:
    """Compile ``pattern`` with Go's ``regexp`` syntax; InvalidArgumentError where Go rejects."""
    if any("\ud800" <= ch <= "\udfff" for ch in pattern):
        raise InvalidArgumentError("invalid UTF-8")
    _check_go_only_syntax(pattern)
    try:
        regex = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "backslashreplace")
        if _TOO_LARGE in str(reason):
            reason = f"the compiled pattern exceeds the {MAX_REGEX_MEMORY >> 20} MiB regex budget"
        raise InvalidArgumentError(str(reason)) from None
    for name in regex.groupindex:
        if not set(name) <= _CAPTURE_NAME_CHARS:
            raise InvalidArgumentError(f"invalid named capture: {name!r}")
    return GoRegex(pattern, regex)


def _as_go_sees(value: str) -> str:
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)


def _check_go_only_syntax(pattern: str) -> None:
    """Reject ``\\C`` and nesting deeper than ``MAX_NESTING``, following Go's lexical rules.

    Go reads ``\\Q...\\E`` (outside classes) as literal text up to the first ``\\E``, a class
    from ``[`` (a ``]`` right after ``[`` or ``[^`` is a member) to the next ``]``, skipping
    ``[:name:]``; elsewhere ``\\`` escapes the next character. Anything else malformed is
    left to RE2, whose syntax is Go's in everything this does not check.
    """
    i, n, depth = 0, len(pattern), 0
    in_class = first = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < n and pattern[i + 1] == "C":
                raise InvalidArgumentError("invalid escape sequence: `\\C`")
            if i + 1 < n and pattern[i + 1] == "Q" and not in_class:
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            i, first = i + 2, False
            continue
        if in_class:
            if ch == "]" and not first:
                in_class = False
            elif pattern.startswith("[:", i) and (end := pattern.find(":]", i + 2)) >= 0:
                i = end + 1
            i, first = i + 1, False
            continue
        if ch == "[":
            in_class = first = True
            i += 2 if pattern.startswith("[^", i) else 1
            continue
        if ch == "(":
            depth += 1
            if depth > MAX_NESTING:
                raise InvalidArgumentError(f"groups nest more than {MAX_NESTING} deep")
        elif ch == ")":
            depth = max(0, depth - 1)
        i += 1
