"""Upload-session and block ids for the Azure driver.

Azure has no multipart-upload object: blocks are staged on the target blob itself and a commit
names the blocks the blob is made of. A cargohold upload session is therefore only a naming
convention over block ids:

* a session id is 32 hex characters: the start time (milliseconds, 12 hex) and 80 random bits;
* each ``upload_part`` call stages a block whose id is
  ``ch1-<session id>-<part number, 5 digits>-<stamp, 12 hex><4 random hex>``.

Every id has the same length (Azure rejects a blob whose block ids differ in length). Because
each call mints a fresh id, re-uploading a part never overwrites the block a previous call
staged: the id is the part's etag, and committing exactly the ids a writer holds commits exactly
the bytes it uploaded, whatever a stale writer staged meanwhile. When a part was staged more
than once, the newest stamp wins in ``list_parts``.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "MAX_PART_NUMBER",
    "BlockId",
    "is_session_id",
    "new_block_id",
    "new_session_id",
    "parse_block_id",
    "session_started",
]

MAX_PART_NUMBER = 50_000
"""Azure's limit on committed blocks per blob."""

_SESSION = re.compile(r"[0-9a-f]{32}")
_BLOCK = re.compile(r"ch1-([0-9a-f]{32})-(\d{5})-([0-9a-f]{16})")


@dataclass(frozen=True)
class BlockId:
    """A parsed block id of one of our sessions."""

    session: str
    number: int
    stamp: str


def _millis() -> int:
    return time.time_ns() // 1_000_000


def new_session_id() -> str:
    """A fresh session id that records when it was made."""
    return f"{_millis():012x}{secrets.token_hex(10)}"


def is_session_id(upload_id: str) -> bool:
    """Whether ``upload_id`` has the shape ``new_session_id`` gives."""
    return _SESSION.fullmatch(upload_id) is not None


def session_started(upload_id: str) -> datetime:
    """When the session was started (client clock)."""
    return datetime.fromtimestamp(int(upload_id[:12], 16) / 1000, UTC)


def new_block_id(upload_id: str, number: int) -> str:
    """A block id for part ``number`` of a session, unique to this call."""
    return f"ch1-{upload_id}-{number:05d}-{_millis():012x}{secrets.token_hex(2)}"


def parse_block_id(block_id: str) -> BlockId | None:
    """The parts of one of our block ids; ``None`` for any other id."""
    match = _BLOCK.fullmatch(block_id)
    if match is None:
        return None
    return BlockId(match[1], int(match[2]), match[3])
