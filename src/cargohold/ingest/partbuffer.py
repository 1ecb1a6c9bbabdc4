"""The bytes of the part a writer is filling, held as the chunks it was given."""

from __future__ import annotations

__all__ = ["PartBuffer"]


class PartBuffer:
    """Immutable chunks appended by reference and joined once, when the part is cut.

    A writer fed 1 MiB ``bytes`` chunks (a gRPC message each) thus copies every byte once,
    into the joined part, instead of once into a growing buffer and again out of it.
    """

    __slots__ = ("_chunks", "_size")

    def __init__(self, initial: bytes = b"") -> None:
        self._chunks: list[bytes] = [initial] if initial else []
        self._size = len(initial)

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def add(self, chunk: bytes) -> None:
        """Append ``chunk`` (kept by reference: it must not change afterwards)."""
        if chunk:
            self._chunks.append(chunk)
            self._size += len(chunk)

    def getvalue(self) -> bytes:
        """Every byte held, as one ``bytes`` (joined once, then kept joined)."""
        if len(self._chunks) > 1:
            self._chunks = [b"".join(self._chunks)]
        return self._chunks[0] if self._chunks else b""

    def take(self) -> bytes:
        """Every byte held; the buffer is empty afterwards."""
        data = self.getvalue()
        self.clear()
        return data

    def clear(self) -> None:
        """Drop every byte held."""
        self._chunks = []
        self._size = 0
