"""How the GCS driver is configured and how its SDK client is built.

Credentials come from ``google.auth.default()``; anonymous credentials are used only against an
emulator (``endpoint_url`` or ``STORAGE_EMULATOR_HOST``). The HTTP connection pool is sized for
the upload concurrency.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import google.auth
import requests
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage

from ..base import MiB
from ..options import option, parse_options
from .errors import raise_translated

__all__ = ["GCSConfig", "GCSOptions", "make_client", "options_from", "uses_claims"]


@dataclass(frozen=True)
class GCSOptions:
    """Everything ``GCSDriver`` needs besides the bucket name (the URL options)."""

    project: str | None = None
    endpoint_url: str | None = None
    """Set for an emulator (or a private endpoint); ``STORAGE_EMULATOR_HOST`` also counts."""
    part_size: int = option(8 * MiB, minimum=256 * 1024, size=True)
    """The part size the store uses by default."""
    concurrency: int = option(4, minimum=1)
    """Default parallel part uploads; also sizes the connection pool."""
    storage_class: str | None = None
    kms_key_name: str | None = None
    timeout: float = option(60.0, minimum=1)
    """Seconds for one HTTP request (connect and read)."""
    retry_deadline: float = option(120.0, minimum=0)
    """Seconds within which a transiently failing request is retried, with backoff."""
    claim_timeout: float = option(60.0, minimum=1)
    """A commit claim older than this is taken over (its holder is presumed dead)."""
    create_only: Literal["auto", "native", "claim"] = "auto"
    """How create-only commits and copies are made atomic: ``native`` trusts GCS's
    ``ifGenerationMatch=0`` on compose and rewrite; ``claim`` first takes a claim object, for
    servers that ignore it (fake-gcs-server); ``auto``: ``claim`` against an emulator endpoint
    (``endpoint_url`` or ``STORAGE_EMULATOR_HOST``), ``native`` otherwise."""


GCSConfig = GCSOptions
"""The former name of ``GCSOptions``."""


def options_from(options: dict[str, Any], scheme: str) -> GCSOptions:
    """Pop the GCS options out of ``options`` (URL query merged with keywords)."""
    return parse_options(GCSOptions, options, scheme)


def _emulator_host(config: GCSOptions) -> str | None:
    if config.endpoint_url:
        return config.endpoint_url
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    if not host:
        return None
    return host if "://" in host else f"http://{host}"


def uses_claims(config: GCSOptions) -> bool:
    """Whether create-only commits and copies take a claim first (see ``create_only``)."""
    if config.create_only == "auto":
        return _emulator_host(config) is not None
    return config.create_only == "claim"


def make_client(config: GCSOptions) -> storage.Client:
    """A client whose connection pool fits the upload concurrency."""
    emulator = _emulator_host(config)
    credentials: Credentials
    project = config.project
    if emulator:
        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        project = project or "cargohold"
    else:
        try:
            credentials, default_project = google.auth.default(
                scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
            )
        except Exception as exc:
            raise_translated(exc, "Google credentials")
        project = project or default_project
    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    pool = max(10, 2 * config.concurrency + 2)
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool, pool_maxsize=pool)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    options: dict[str, Any] = {"api_endpoint": emulator} if emulator else {}
    return storage.Client(
        project=project, credentials=credentials, _http=session, client_options=options or None
    )
