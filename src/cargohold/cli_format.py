"""How the CLI prints things: human sizes and ages, aligned tables, JSON records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

from .types import Info, Status

__all__ = ["age", "echo_json", "human_size", "info_json", "status_json", "table"]


def age(when: datetime) -> str:
    """How long ago ``when`` was, in its largest whole unit."""
    seconds = int((datetime.now(UTC) - when).total_seconds())
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{max(seconds, 0)} seconds"


def human_size(n: int) -> str:
    """``n`` bytes as B, KiB, MiB, GiB or TiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def info_json(info: Info) -> dict[str, Any]:
    """A blob's record as JSON-ready data."""
    return {
        "digest": info.digest,
        "size": info.size,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "labels": dict(info.labels),
    }


def status_json(status: Status) -> dict[str, Any]:
    """An ingestion's status as JSON-ready data."""
    return {
        "ref": status.ref,
        "offset": status.offset,
        "total": status.total,
        "expected": status.expected,
        "started_at": status.started_at.isoformat(),
        "updated_at": status.updated_at.isoformat(),
    }


def echo_json(value: object, *, indent: int | None = 2, err: bool = False) -> None:
    """Print ``value`` as JSON (one line with ``indent=None``)."""
    click.echo(json.dumps(value, indent=indent), err=err)


def table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows as tab-separated columns padded to a common width."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        click.echo("\t".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip())
