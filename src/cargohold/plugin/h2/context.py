"""The part of ``grpc.ServicerContext`` the plugin's handlers (and grpc_health) use, for a
call served by the h2 engine."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from .frames import ErrorCode
from .stream import Metadatum, Stream

__all__ = ["Aborted", "H2Context"]


class Aborted(Exception):
    """Raised by ``abort``: the call ends with the status set on the context."""


class H2Context:
    """A ``grpc.ServicerContext`` look-alike for one call."""

    __slots__ = ("_code", "_details", "_stream")

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._code: grpc.StatusCode | None = None
        self._details = ""

    # -- status -------------------------------------------------------------------------------

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        if code is grpc.StatusCode.OK:
            raise ValueError("abort() needs a status other than OK")
        self._code, self._details = code, details
        raise Aborted(details)

    def abort_with_status(self, status: Any) -> None:
        self.abort(status.code, status.details)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    def status(self) -> tuple[int, str]:
        """(numeric code, message) to end the call with, as the handler left them."""
        code = self._code or grpc.StatusCode.OK
        return int(code.value[0]), self._details

    # -- the call -----------------------------------------------------------------------------

    def invocation_metadata(self) -> tuple[Metadatum, ...]:
        return self._stream.metadata

    def peer(self) -> str:
        return self._stream.conn.peer

    def is_active(self) -> bool:
        return self._stream.active

    def time_remaining(self) -> float | None:
        return self._stream.time_remaining()

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return self._stream.add_callback(callback)

    def cancel(self) -> None:
        conn = self._stream.conn
        with contextlib.suppress(RuntimeError):  # a stopped loop: the call is over anyway
            conn.loop.call_soon_threadsafe(conn.cancel, self._stream, ErrorCode.CANCEL, None)

    # -- metadata the plugin never sends (accepted and dropped) ------------------------------

    def send_initial_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        pass

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        pass
