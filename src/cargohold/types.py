"""The public data types: Descriptor, Info and Status (frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Descriptor", "Info", "Status"]


@dataclass(frozen=True)
class Descriptor:
    """What a writer is told to expect: an OCI descriptor (only size and digest are used)."""

    media_type: str = ""
    digest: str = ""
    size: int = 0
    annotations: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Info:
    """A committed blob: its digest, size, times (UTC) and labels."""

    digest: str
    size: int
    created_at: datetime
    updated_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    """An ingestion in progress, keyed by its ref."""

    ref: str
    offset: int
    total: int
    expected: str
    started_at: datetime
    updated_at: datetime
