"""One way for every driver to read its options into a typed dataclass.

A driver declares its options as a frozen dataclass whose fields carry their limits
(``option(default, minimum=..., maximum=..., choices=...)``); ``parse_options`` pops each field
from the merged options (URL query, then keywords), converts it by the field's type, checks it
and builds the dataclass. Options the dataclass does not know raise ``InvalidArgumentError``.

One name per concept across drivers:

* ``part_size``: bytes per uploaded part, the driver's default for the store (``chunk_size``
  and ``block_size`` are old names for it);
* ``concurrency``: parallel part uploads, which also sizes the driver's connection pool
  (``upload_concurrency`` and ``max_connections`` are old names for it).

An old name still works and warns (``DeprecationWarning``) naming the new one. A bad value
raises ``InvalidArgumentError`` naming the option as it was given: a non-number, a number out
of range, ``inf`` or ``nan``, a value outside a fixed set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import types
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from ..errors import InvalidArgumentError

__all__ = ["RENAMED", "option", "parse_options", "reject_unknown"]

RENAMED: Mapping[str, str] = types.MappingProxyType(
    {
        "chunk_size": "part_size",
        "block_size": "part_size",
        "upload_concurrency": "concurrency",
        "max_connections": "concurrency",
    }
)
"""Old option name -> the one name it now has."""

_T = TypeVar("_T")
_PACKAGE = str(Path(__file__).resolve().parents[1])
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def option(
    default: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
    size: bool = False,
    secret: bool = False,
) -> Any:
    """A dataclass field for an option: its default and what a value must satisfy.

    ``size``: the value is a byte count (limits are shown in KiB/MiB). ``secret``: the value is
    never repeated in an error message (a connection string may hold a key).
    """
    meta = {"minimum": minimum, "maximum": maximum, "choices": choices, "size": size}
    return dataclasses.field(default=default, metadata={**meta, "secret": secret})


def reject_unknown(options: Mapping[str, Any], scheme: str) -> None:
    """Raise InvalidArgumentError naming options a driver does not understand."""
    if options:
        names = ", ".join(sorted(options))
        raise InvalidArgumentError(f"unknown option(s) for {scheme}:// stores: {names}")


def parse_options(cls: type[_T], options: dict[str, Any], scheme: str) -> _T:
    """Pop every option ``cls`` declares out of ``options`` and build it; reject the rest.

    Empty values (``?region=``) and ``None`` keep a field's default.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = get_type_hints(cls)
    labels = _take_renamed(options, fields)
    values: dict[str, Any] = {}
    for name, field in fields.items():
        raw = options.pop(name, None)
        if raw is None or raw == "":
            continue
        values[name] = _convert(raw, hints[name], field.metadata, labels.get(name, name))
    reject_unknown(options, scheme)
    return cls(**values)


def _take_renamed(options: dict[str, Any], fields: Mapping[str, Any]) -> dict[str, str]:
    """Move values given under an old name to the new one, warning; the label of each."""
    labels: dict[str, str] = {}
    for old, new in RENAMED.items():
        if old not in options or new not in fields:
            continue
        value = options.pop(old)
        if new in options:
            _warn(f"option {old} is deprecated and ignored here: {new} is given too")
            continue
        _warn(f"option {old} is deprecated; use {new}")
        options[new] = value
        labels[new] = old
    return labels


def _warn(message: str) -> None:
    """A DeprecationWarning attributed to the first caller outside cargohold."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back  # type: ignore[assignment]
    warnings.warn(message, DeprecationWarning, stacklevel=level)


def _convert(raw: Any, hint: Any, meta: Mapping[str, Any], label: str) -> Any:
    kind = _base_type(hint)
    shown = "<hidden>" if meta.get("secret") else repr(raw)
    choices = meta.get("choices")
    if get_origin(kind) is Literal:
        choices, kind = tuple(get_args(kind)), str
    if kind is bool:
        return _boolean(raw, label, shown)
    if kind is str:
        if not isinstance(raw, str):
            raise InvalidArgumentError(f"option {label} must be a string, got {shown}")
        if choices is not None and raw not in choices:
            raise InvalidArgumentError(f"option {label} must be one of {choices}, got {shown}")
        return raw
    if kind is int:
        value: float = _integer(raw, label, shown)
    elif kind is float:
        value = _real(raw, label, shown)
    else:  # pragma: no cover - a driver declared a type this parser does not read
        raise TypeError(f"option {label}: unsupported type {hint!r}")
    _check_range(value, meta, label)
    return value


def _base_type(hint: Any) -> Any:
    """``int`` of ``int | None``; anything else unchanged."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _boolean(raw: Any, label: str, shown: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    with contextlib.suppress(ValueError):
        return int(text) != 0
    raise InvalidArgumentError(f"option {label} must be 0/1 or true/false, got {shown}")


def _integer(raw: Any, label: str, shown: str) -> int:
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise InvalidArgumentError(f"option {label} must be an integer, got {shown}")
    try:
        return int(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError(f"option {label} must be an integer, got {shown}") from exc


def _real(raw: Any, label: str, shown: str) -> float:
    if isinstance(raw, bool):
        raise InvalidArgumentError(f"option {label} must be a number, got {shown}")
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError(f"option {label} must be a number, got {shown}") from exc
    if not math.isfinite(value):
        raise InvalidArgumentError(f"option {label} must be a finite number, got {shown}")
    return value


def _check_range(value: float, meta: Mapping[str, Any], label: str) -> None:
    minimum, maximum = meta.get("minimum"), meta.get("maximum")
    size = bool(meta.get("size"))
    if minimum is not None and value < minimum:
        raise InvalidArgumentError(
            f"option {label} must be >= {_show(minimum, size)}, got {_show(value, size)}"
        )
    if maximum is not None and value > maximum:
        raise InvalidArgumentError(
            f"option {label} must be at most {_show(maximum, size)}, got {_show(value, size)}"
        )


def _show(value: float, size: bool) -> str:
    """``4000 MiB`` for a byte count that is a whole number of MiB (or KiB), else the number."""
    if size and value:
        for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
            if value % scale == 0:
                return f"{int(value // scale)} {unit}"
    return f"{value:g}" if isinstance(value, float) else str(value)
