"""Conversions between cargohold's types and the content service's protobuf messages."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ..types import Info, Status
from .gen import content_pb2 as pb

__all__ = ["info_from_pb", "info_to_pb", "status_to_pb", "timestamp"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(when: datetime) -> Timestamp:
    """A protobuf Timestamp for a timezone-aware datetime."""
    ts = Timestamp()
    ts.FromDatetime(when.astimezone(UTC))
    return ts


def _datetime(ts: Timestamp) -> datetime:
    if ts.seconds == 0 and ts.nanos == 0:
        return _EPOCH
    return ts.ToDatetime(tzinfo=UTC)


def info_to_pb(info: Info) -> pb.Info:
    """The wire form of a blob's Info."""
    return pb.Info(
        digest=info.digest,
        size=info.size,
        created_at=timestamp(info.created_at),
        updated_at=timestamp(info.updated_at),
        labels=dict(info.labels),
    )


def info_from_pb(msg: pb.Info) -> Info:
    """An Info from its wire form (times default to the epoch when unset)."""
    return Info(
        digest=msg.digest,
        size=msg.size,
        created_at=_datetime(msg.created_at),
        updated_at=_datetime(msg.updated_at),
        labels=dict(msg.labels),
    )


def status_to_pb(status: Status, ref: str | None = None) -> pb.Status:
    """The wire form of an ingestion's Status, optionally under another ref."""
    return pb.Status(
        started_at=timestamp(status.started_at),
        updated_at=timestamp(status.updated_at),
        ref=status.ref if ref is None else ref,
        offset=status.offset,
        total=status.total,
        expected=status.expected,
    )
