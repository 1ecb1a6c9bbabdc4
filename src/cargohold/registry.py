"""URL scheme → driver, with lazy imports, install hints and third-party entry points.

``open_store("s3://bucket/prefix?region=eu-west-1", part_size=16 << 20)``: the scheme picks a
driver factory; the URL's query and the keyword arguments are merged (keywords win). The store's
own options (see ``STORE_OPTIONS``) are taken out; the rest go to the driver factory, which
rejects any it does not know with ``InvalidArgumentError``.

A driver factory is a callable ``(url: SplitResult, options: dict[str, Any]) -> OpenedDriver``.
Third-party drivers register one under the ``cargohold.drivers`` entry-point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeVar
from urllib.parse import SplitResult, parse_qsl, urlsplit

from .drivers.base import Driver
from .drivers.options import reject_unknown as _reject_unknown
from .errors import InvalidArgumentError

__all__ = ["STORE_OPTIONS", "DriverFactory", "OpenedDriver", "open_driver", "parse_url"]

_N = TypeVar("_N", int, float)

STORE_OPTIONS = frozenset({"lease_timeout", "part_size", "concurrency", "read_streams"})


@dataclass(frozen=True)
class OpenedDriver:
    """A driver and the key prefix (without a trailing slash) the store lives under."""

    driver: Driver
    prefix: str


DriverFactory = Callable[[SplitResult, dict[str, Any]], OpenedDriver]

# Built-in drivers whose connection pool is sized by the store's concurrency.
_POOLED = frozenset({"s3", "gs", "gcs", "az", "azure"})

# scheme -> (module, factory attribute, extra to install)
_BUILTIN: dict[str, tuple[str, str, str | None]] = {
    "memory": ("cargohold.drivers.memory", "from_url", None),
    "file": ("cargohold.drivers.local", "from_url", None),
    "s3": ("cargohold.drivers.s3", "from_url", "s3"),
    "gs": ("cargohold.drivers.gcs", "from_url", "gcs"),
    "gcs": ("cargohold.drivers.gcs", "from_url", "gcs"),
    "az": ("cargohold.drivers.azure", "from_url", "azure"),
    "azure": ("cargohold.drivers.azure", "from_url", "azure"),
}


def parse_url(url: str, options: Mapping[str, Any]) -> tuple[SplitResult, dict[str, Any]]:
    """Split a store URL and merge its query options with keyword options (keywords win)."""
    if not isinstance(url, str) or "://" not in url:
        raise InvalidArgumentError(f"store URL must look like scheme://location/path, got {url!r}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unbalanced [ or ] in the location, say
        raise InvalidArgumentError(f"malformed store URL {url[:200]!r}: {exc}") from exc
    merged: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    merged.update(options)
    return parts._replace(query=""), merged


def _factory(scheme: str) -> DriverFactory:
    if scheme in _BUILTIN:
        module_name, attr, extra = _BUILTIN[scheme]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            hint = f"; install it with: pip install 'cargohold[{extra}]'" if extra else ""
            raise InvalidArgumentError(
                f"the {scheme}:// driver needs a package that is missing ({exc.name}){hint}"
            ) from exc
        factory: DriverFactory = getattr(module, attr)
        return factory
    for ep in entry_points(group="cargohold.drivers"):
        if ep.name == scheme:
            loaded: DriverFactory = ep.load()
            return loaded
    known = ", ".join(sorted(_BUILTIN))
    raise InvalidArgumentError(f"unknown store scheme {scheme!r} (known: {known})")


def open_driver(
    url: SplitResult, driver_options: dict[str, Any], *, concurrency: int | None = None
) -> OpenedDriver:
    """Open the driver for a parsed URL with its driver-specific options.

    ``concurrency`` (the store's, when given) is passed on to the built-in drivers that size a
    connection pool by it, unless the options already name one.
    """
    scheme = url.scheme.lower()
    if concurrency is not None and scheme in _POOLED:
        driver_options = {"concurrency": concurrency, **driver_options}
    return _factory(scheme)(url, driver_options)


def pop_number(options: dict[str, Any], name: str, kind: type[_N], what: str) -> _N | None:
    """Pop option ``name`` (a URL string or a keyword) as a ``kind``; ``None`` when unset or empty.

    ``what`` names the expected value in the ``InvalidArgumentError`` a bad value raises.
    """
    raw = options.pop(name, None)
    if raw is None or raw == "":
        return None
    try:
        return kind(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError(f"option {name} must be {what}, got {raw!r}") from exc


def option_int(options: dict[str, Any], name: str, default: int, *, minimum: int = 0) -> int:
    """Pop an integer option (from a URL string or a keyword), validating it.

    For third-party drivers; the built-in ones declare their options as a dataclass read by
    ``cargohold.drivers.options.parse_options``.
    """
    value = pop_number(options, name, int, "an integer")
    if value is None:
        return default
    if value < minimum:
        raise InvalidArgumentError(f"option {name} must be >= {minimum}, got {value}")
    return value


def reject_unknown(options: Mapping[str, Any], scheme: str) -> None:
    """Raise InvalidArgumentError naming options a driver does not understand."""
    _reject_unknown(options, scheme)
