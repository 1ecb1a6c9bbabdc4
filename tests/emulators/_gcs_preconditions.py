"""The generation preconditions GCS enforces on writes, evaluated for a recorded request.

fake-gcs-server 1.54 enforces ``ifGenerationMatch`` on multipart uploads only. The recording
proxy, asked to, evaluates these conditions itself, under a per-object lock, before a write
reaches the emulator, so that compose, rewrite, copy, simple (media) uploads, metadata updates
and deletes answer 412 as GCS does (see /storage/docs/request-preconditions):

- ``ifGenerationMatch`` names the generation of the object written (for compose, rewrite and
  copy: the destination); 0 means "only if there is no live object".
- ``ifMetagenerationMatch`` names its metageneration; it fails where there is no object.
- ``ifSourceGenerationMatch`` / ``ifSourceMetagenerationMatch`` (rewrite, copy) name the source.
- ``sourceObjects[].objectPreconditions.ifGenerationMatch`` (compose body) name each source.

Resumable uploads are not covered (their object is created by a later request); the GCS
driver's writes are multipart below 8 MiB. ``ifGenerationNotMatch`` is not evaluated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from ._recorder import RecordedRequest

__all__ = ["PRECONDITION_FAILED", "WRITES", "unmet_precondition"]

WRITES = frozenset(
    {"upload:media", "upload:multipart", "compose", "rewrite", "copy", "update", "patch", "delete"}
)
"""Operations that write the object they name (and so take its lock when enforcing)."""

PRECONDITION_FAILED = json.dumps(
    {
        "error": {
            "code": 412,
            "message": "At least one of the pre-conditions you specified did not hold.",
            "errors": [
                {
                    "domain": "global",
                    "reason": "conditionNotMet",
                    "message": "At least one of the pre-conditions you specified did not hold.",
                }
            ],
        }
    }
).encode()
"""The body GCS answers a failed precondition with (HTTP 412)."""

Lookup = Callable[[str, str], "dict[str, Any] | None"]
"""(bucket, object name) -> the object's JSON metadata, or None where there is none."""


def _holds(
    lookup: Lookup, bucket: str, name: str, generation: str | None, meta: str | None
) -> bool:
    """Whether object ``bucket/name`` has that generation and metageneration (None: any)."""
    if generation is None and meta is None:
        return True
    metadata = lookup(bucket, name)
    current = int(metadata["generation"]) if metadata else 0
    if generation is not None and int(generation) != current:
        return False
    return meta is None or (
        metadata is not None and int(meta) == int(metadata.get("metageneration", 1))
    )


def unmet_precondition(request: RecordedRequest, lookup: Lookup) -> bool:
    """Whether a precondition the write names does not hold (GCS would answer 412)."""
    bucket, name, op = request.bucket, request.object_name, request.operation
    if op not in WRITES or not name or not bucket:
        return False
    q = request.param
    if not _holds(lookup, bucket, name, q("ifGenerationMatch"), q("ifMetagenerationMatch")):
        return True
    if op in ("rewrite", "copy"):
        source = unquote(request.segments[3]), unquote(request.segments[5])
        generation, meta = q("ifSourceGenerationMatch"), q("ifSourceMetagenerationMatch")
        if not _holds(lookup, *source, generation, meta):
            return True
    if op == "compose" and isinstance(request.json, dict):
        for part in request.json.get("sourceObjects") or []:
            wanted = (part.get("objectPreconditions") or {}).get("ifGenerationMatch")
            if not _holds(
                lookup, bucket, part["name"], None if wanted is None else str(wanted), None
            ):
                return True
    return False
