"""cargohold: containerd's content store on cloud object storage.

>>> import cargohold
>>> store = cargohold.open_store("memory://demo")
>>> with store.writer("ref-1") as w:
...     _ = w.write(b"hello")
...     w.commit()
"""

from __future__ import annotations

import importlib
import math
from typing import TYPE_CHECKING, Any

from .content import Ingester, IngestManager, Manager, Provider, ReaderAt
from .errors import (
    AlreadyExistsError,
    ContentError,
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    UnauthenticatedError,
    UnavailableError,
)
from .ingest import Writer
from .locks import DEFAULT_LEASE_TIMEOUT
from .registry import STORE_OPTIONS, open_driver, parse_url, pop_number
from .types import Descriptor, Info, Status

if TYPE_CHECKING:
    from .helpers import open_blob, read_blob, write_blob
    from .names import ImageName, NameStore
    from .store import Store

# Imported on first use, so that importing a lower layer (``cargohold.ingest``, a driver)
# does not import the store on top of it.
_LAZY = {
    "ImageName": ".names",
    "NameStore": ".names",
    "Store": ".store",
    "open_blob": ".helpers",
    "read_blob": ".helpers",
    "write_blob": ".helpers",
}


def __getattr__(name: str) -> Any:
    """The names of ``_LAZY``, imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AlreadyExistsError",
    "ContentError",
    "DataLossError",
    "Descriptor",
    "FailedPreconditionError",
    "ImageName",
    "Info",
    "IngestManager",
    "Ingester",
    "InvalidArgumentError",
    "Manager",
    "NameStore",
    "NotFoundError",
    "PermissionDeniedError",
    "Provider",
    "ReaderAt",
    "ServiceError",
    "Status",
    "Store",
    "UnauthenticatedError",
    "UnavailableError",
    "Writer",
    "open_blob",
    "open_store",
    "read_blob",
    "write_blob",
]

__version__ = "0.1.0"


def _number(options: dict[str, Any], name: str, kind: type[int] | type[float]) -> Any:
    raw = options.get(name)
    value = pop_number(options, name, kind, "a number")
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise InvalidArgumentError(f"option {name} must be positive, got {raw!r}")
    return value


def open_store(url: str, **options: Any) -> Store:
    """Open the store at ``url`` (``memory://``, ``file://``, ``s3://``, ``gs://``, ``az://``).

    Store options (URL query or keywords): ``lease_timeout`` (seconds, default 60),
    ``part_size`` (bytes), ``concurrency`` (parallel part uploads), ``read_streams``
    (parallel ranged gets of one large read; the driver's default, else ``concurrency``).
    Everything else goes to the driver; unknown options raise InvalidArgumentError.
    """
    from .store import Store

    parts, merged = parse_url(url, options)
    store_opts = {name: merged.pop(name) for name in list(merged) if name in STORE_OPTIONS}
    lease_timeout = _number(store_opts, "lease_timeout", float) or DEFAULT_LEASE_TIMEOUT
    part_size = _number(store_opts, "part_size", int)
    concurrency = _number(store_opts, "concurrency", int)
    read_streams = _number(store_opts, "read_streams", int)
    opened = open_driver(parts, merged, concurrency=concurrency)
    try:
        return Store(
            opened.driver,
            opened.prefix,
            lease_timeout=lease_timeout,
            part_size=part_size,
            concurrency=concurrency,
            read_streams=read_streams,
        )
    except BaseException:
        opened.driver.close()
        raise
