"""A TCP proxy on 127.0.0.1 that makes a loopback emulator answer like a distant object store.

Every HTTP request through it waits ``delay`` seconds before it is forwarded, so each response's
first byte reaches the client ``delay`` later than it would (the time to first byte of a real
store, 10-50 ms, instead of loopback's ~1 ms). Keep-alive connections are handled by turns, not
by parsing: HTTP/1.1 clients send a request and then wait for its whole response (none of the
SDKs pipeline), so client bytes that follow server bytes on a connection start a new exchange.
That holds for any framing (content-length, chunked, HEAD, 204) and makes an ``Expect:
100-continue`` upload cost two delays, as it does against a real store. ``bandwidth`` optionally
caps each direction at that many bytes per second, shared by all connections.

Requests are counted per HTTP method (``requests``; ranged GETs as ``GET (ranged)``); benchmarks
read the counts between steps.

    with LatencyProxy("http://127.0.0.1:5000", delay=0.020) as proxy:
        use(proxy.url)

    python -m tests.emulators._latency --target http://127.0.0.1:5000 --delay-ms 20
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

__all__ = ["LatencyProxy"]

_METHODS = frozenset(b"GET HEAD PUT POST DELETE PATCH OPTIONS".split())
_RECV = 256 * 1024


class _Throttle:
    """A byte rate shared by the connections of one direction; ``None`` rate = unlimited."""

    def __init__(self, rate: float | None) -> None:
        self._rate = rate
        self._next = 0.0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        if not self._rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + n / self._rate
            wait = self._next - now
        time.sleep(wait)


class _Connection:
    """One client connection and its upstream connection: one pump thread per direction."""

    def __init__(self, proxy: LatencyProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = socket.create_connection(proxy.target, timeout=60)
        for sock in (client, self.upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)
        self.server_spoke = True  # the first client bytes start an exchange
        self._open_pumps = 2
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._pump_up, daemon=True, name="latency-up"),
            threading.Thread(target=self._pump_down, daemon=True, name="latency-down"),
        ]
        for t in self.threads:
            t.start()

    def _pump_up(self) -> None:
        proxy = self.proxy
        with contextlib.suppress(OSError):
            while data := self.client.recv(_RECV):
                if self.server_spoke:
                    self.server_spoke = False
                    proxy.count(data)
                    if proxy.delay > 0:
                        time.sleep(proxy.delay)
                proxy.up.take(len(data))
                self.upstream.sendall(data)
        with contextlib.suppress(OSError):
            self.upstream.shutdown(socket.SHUT_WR)
        self._pump_done()

    def _pump_down(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.upstream.recv(_RECV):
                self.server_spoke = True
                self.proxy.down.take(len(data))
                self.client.sendall(data)
        with contextlib.suppress(OSError):
            self.client.shutdown(socket.SHUT_WR)
        self._pump_done()

    def _pump_done(self) -> None:
        with self._lock:
            self._open_pumps -= 1
            last = self._open_pumps == 0
        if last:
            self.close()

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def join(self, timeout: float) -> None:
        for t in self.threads:
            t.join(timeout)


class LatencyProxy:
    """Forward 127.0.0.1:<port> to ``target`` with ``delay`` seconds before each request."""

    def __init__(self, target: str, delay: float = 0.0, bandwidth: float | None = None) -> None:
        parts = urlsplit(target if "://" in target else f"http://{target}")
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the proxy only forwards to loopback, got {target!r}")
        self.target = (parts.hostname, parts.port or 80)
        self.delay = delay
        self.up = _Throttle(bandwidth)
        self.down = _Throttle(bandwidth)
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._connections: list[_Connection] = []
        self._stopped = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True, name="latency")

    def start(self) -> LatencyProxy:
        self._acceptor.start()
        return self

    def count(self, data: bytes) -> None:
        """Count the request whose first bytes are ``data``."""
        method = data[:8].split(b" ", 1)[0]
        if method in _METHODS:
            name = method.decode()
            head = data[:8192].lower()
            if method == b"GET" and b"\r\nrange:" in head:
                name = "GET (ranged)"
            with self._lock:
                self.requests[name] += 1

    @property
    def total(self) -> int:
        """Requests forwarded since the last ``reset``."""
        with self._lock:
            return sum(self.requests.values())

    def reset(self) -> Counter[str]:
        """Requests per method since the last reset; start counting from zero."""
        with self._lock:
            counts, self.requests = self.requests, Counter()
        return counts

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                conn = _Connection(self, client)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections = [
                    c for c in self._connections if any(t.is_alive() for t in c.threads)
                ]
                self._connections.append(conn)

    def stop(self) -> None:
        """Stop accepting, close every connection, wait (bounded) for the threads."""
        self._stopped.set()
        self._listener.close()
        self._acceptor.join(5)
        with self._lock:
            conns, self._connections = self._connections, []
        for conn in conns:
            conn.close()
        for conn in conns:
            conn.join(5)

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """Run a proxy in the foreground until interrupted."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--target", required=True, help="http://127.0.0.1:PORT of the emulator")
    p.add_argument("--delay-ms", type=float, default=20.0)
    p.add_argument("--mib-per-s", type=float, default=0.0, help="bandwidth cap (0: none)")
    args = p.parse_args()
    cap = args.mib_per_s * 1024 * 1024 or None
    with LatencyProxy(args.target, args.delay_ms / 1000, cap) as proxy:
        print(proxy.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
