"""A third party's cargohold driver, as the conformance suite sees one: ``example:///path``.

It is cargohold's file:// driver under another scheme, registered through the
``cargohold.drivers`` entry point. ``example-leaky:///path`` is the same driver with a bug: it
forgets to drop an aborted upload session's parts, though its limits say abort removes them
(``abort_removes_parts``, True as on file://).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote

from cargohold.drivers.local import LocalDriver
from cargohold.errors import InvalidArgumentError
from cargohold.registry import OpenedDriver, reject_unknown


class ExampleDriver(LocalDriver):
    """The third party's driver."""


class LeakyDriver(ExampleDriver):
    """The same, leaving aborted upload sessions behind."""

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Says it aborted; removes nothing."""


def _root(url: SplitResult, options: dict[str, Any]) -> Path:
    reject_unknown(options, url.scheme)
    path = unquote(url.path)
    if url.netloc or not path.startswith("/"):
        raise InvalidArgumentError(f"{url.scheme}:// needs an absolute path: {url.geturl()!r}")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    return root


def from_url(url: SplitResult, options: dict[str, Any]) -> OpenedDriver:
    """``example:///absolute/path``."""
    return OpenedDriver(ExampleDriver(_root(url, options), fsync=False), "")


def leaky_from_url(url: SplitResult, options: dict[str, Any]) -> OpenedDriver:
    """``example-leaky:///absolute/path``."""
    return OpenedDriver(LeakyDriver(_root(url, options), fsync=False), "")
