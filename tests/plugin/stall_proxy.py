"""A TCP proxy on 127.0.0.1 that can forward, stall, or refuse: a backend that misbehaves.

``forward`` passes bytes both ways. ``stall`` keeps every connection open (and accepts new
ones) but passes nothing on, like a server that stopped answering mid-request. ``refuse``
closes every connection, current and new, like a server that went away.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

__all__ = ["StallingProxy"]

_MODES = ("forward", "stall", "refuse")


class StallingProxy:
    """Listens on 127.0.0.1 (a free port unless given) in front of ``upstream`` (host, port)."""

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self._upstream = upstream
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._mode = "forward"
        self._closed = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.held_bytes = 0
        """Bytes received while stalled and never passed on."""
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        """Switch to ``forward``, ``stall`` or ``refuse`` (which drops every connection)."""
        assert mode in _MODES, mode
        self._mode = mode
        if mode == "refuse":
            self._drop_all()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self._drop_all()
        self._thread.join(5)

    def __enter__(self) -> StallingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._mode == "refuse":
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.2)
        try:
            while not self._closed:
                try:
                    data = src.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                while self._mode == "stall" and not self._closed:
                    self.held_bytes += len(data)
                    data = b""  # a stalled server never answers what it was sent
                    time.sleep(0.05)
                if self._mode == "refuse" or self._closed:
                    break
                if data:
                    dst.settimeout(30)
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
