"""Thread stacks for diagnosis: the stack of one thread, and the threads working for a writer.

Used by the slow-RPC watchdog and at shutdown, so that a hang in the field can be diagnosed
from the log alone. Everything here only reads ``sys._current_frames()``; nothing waits.
"""

from __future__ import annotations

import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from ..ingest import Writer

__all__ = ["WriterThread", "format_stack", "thread_name", "writer_threads"]

_MAX_FRAMES = 40
_PACKAGE = str(Path(__file__).parents[1])  # as code objects name their files


def thread_name(ident: int) -> str:
    """The name of the live thread ``ident``, or ``"?"``."""
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return "?"


def format_stack(ident: int, frame: FrameType | None = None) -> str:
    """The current stack of thread ``ident`` (innermost call last), or ``""`` if it is gone."""
    if frame is None:
        frame = sys._current_frames().get(ident)
    if frame is None:
        return ""
    return "".join(traceback.format_stack(frame, limit=_MAX_FRAMES))


@dataclass(frozen=True)
class WriterThread:
    """A thread currently running code of a writer: which thread, which ref, and its stack."""

    ident: int
    name: str
    ref: str
    stack: str


def _writer_in(frame: FrameType | None) -> Writer | None:
    """The innermost ``Writer`` whose method is on this stack (found through ``self``).

    Only frames of cargohold's own modules are looked into (``f_locals`` of another thread's
    frame is read under the GIL while that thread is paused; nothing is written back).
    """
    while frame is not None:
        code = frame.f_code
        if code.co_filename.startswith(_PACKAGE) and "self" in code.co_varnames:
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, Writer):
                return candidate
        frame = frame.f_back
    return None


def writer_threads(ref_suffix: str = "") -> list[WriterThread]:
    """Every thread inside a writer's code (writing, checkpointing, uploading a part, closing).

    With ``ref_suffix``, only writers whose store ref ends with it (the plugin scopes refs as
    ``<node-id>/<ref>``).
    """
    me = threading.get_ident()
    found = []
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        writer = _writer_in(frame)
        if writer is None or not writer.ref.endswith(ref_suffix):
            continue
        found.append(
            WriterThread(ident, thread_name(ident), writer.ref, format_stack(ident, frame))
        )
    return found
