"""Count and record the HTTP requests a botocore client sends (botocore's event hooks)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sent:
    """One HTTP request as it left botocore."""

    operation: str
    method: str
    url: str
    headers: dict[str, str]


@dataclass
class RequestRecorder:
    """Registered on a client's ``before-send`` event: records every attempt, retries included."""

    sent: list[Sent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Any, **kwargs: Any) -> None:
        operation = str(kwargs.get("event_name", "")).rsplit(".", 1)[-1]
        headers = {
            k.lower(): (v.decode() if isinstance(v, bytes) else str(v))
            for k, v in request.headers.items()
        }
        with self._lock:
            self.sent.append(Sent(operation, request.method, request.url, headers))

    def attach(self, client: Any) -> RequestRecorder:
        """Start recording the requests of ``client``."""
        client.meta.events.register("before-send.s3", self)
        return self

    def detach(self, client: Any) -> None:
        client.meta.events.unregister("before-send.s3", self)

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()

    def count(self, operation: str | None = None) -> int:
        """How many requests (of one operation, e.g. ``"UploadPart"``) were sent."""
        with self._lock:
            return sum(1 for s in self.sent if operation is None or s.operation == operation)

    def operations(self) -> list[str]:
        with self._lock:
            return [s.operation for s in self.sent]
