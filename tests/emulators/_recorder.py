"""An HTTP proxy on 127.0.0.1 that records every request it forwards to a loopback emulator.

Put it in front of fake-gcs-server (or any JSON/XML object store emulator) to see what reached
the wire: each request's method, path, query parameters, a chosen set of headers, its JSON body
(or the JSON metadata part of a ``multipart/related`` upload) and the status that came back. A
test can then prove, for instance, that a create-only commit sent ``ifGenerationMatch=0`` on its
final compose, rewrite or upload, whichever process (a CLI child, the plugin) sent it.

Requests are parsed, not just piped: bodies are read whole (``Content-Length`` or chunked) and
forwarded with a ``Content-Length``; responses are streamed back when their length is known.
A ``Location`` header that points at the emulator is rewritten to point at the proxy, so the data
requests of a resumable upload come back through it too.

``enforce_preconditions=True`` makes the proxy answer 412 itself where GCS would and
fake-gcs-server does not (compose, rewrite, copy, media uploads, updates, deletes; see
``_gcs_preconditions``), each write of an object holding that object's lock from the check to
the emulator's answer: racing create-only writes then behave as on GCS, one wins.

    with RecordingProxy("http://127.0.0.1:4443") as proxy:
        use(proxy.url)
        [compose] = proxy.find("compose", "blobs/sha256/ab...")
        assert compose.param("ifGenerationMatch") == "0"

    python -m tests.emulators._recorder --target http://127.0.0.1:4443 [--enforce-preconditions]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ._gcs_preconditions import PRECONDITION_FAILED as _PRECONDITION_FAILED
from ._gcs_preconditions import WRITES, unmet_precondition

__all__ = ["DEFAULT_HEADERS", "RecordedRequest", "RecordingProxy"]

DEFAULT_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-range",
        "range",
        "if-match",
        "if-none-match",
        "x-http-method-override",
        "x-upload-content-type",
        "x-upload-content-length",
    }
)
"""Headers recorded by default, besides every ``x-goog-*`` header."""

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
_JSON_LIMIT = 64 * 1024
_COPY = 256 * 1024
_UPSTREAM_TIMEOUT = 60.0
_IDLE_TIMEOUT = 30.0


@dataclass
class RecordedRequest:
    """One request as it reached the proxy; ``status`` is set once its response came back."""

    method: str
    path: str
    """The raw (percent-encoded) path, without the query."""
    query: dict[str, list[str]]
    headers: dict[str, str]
    """The recorded headers, names in lower case."""
    json: Any = None
    """The JSON body, or the JSON metadata part of a multipart upload (small bodies only)."""
    status: int | None = None
    segments: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.segments = self.path.strip("/").split("/")

    def param(self, name: str) -> str | None:
        """The last value of query parameter ``name``, or None if it was not sent."""
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def operation(self) -> str:
        """What the request does, in the JSON API's terms.

        ``upload:media``, ``upload:multipart``, ``upload:resumable`` (the session start),
        ``upload:resumable-data``, ``compose``, ``rewrite``, ``copy``, ``download``, ``get``,
        ``update`` (PUT), ``patch``, ``delete``, ``list``, ``bucket``, ``batch`` or ``other``.
        """
        s = self.segments
        if s[:3] == ["upload", "storage", "v1"]:
            kind = self.param("uploadType") or "media"
            if kind == "resumable" and self.method == "PUT":
                return "upload:resumable-data"
            return f"upload:{kind}"
        if s[:3] == ["download", "storage", "v1"]:
            return "download"
        if s[:1] == ["batch"]:
            return "batch"
        if s[:3] != ["storage", "v1", "b"]:
            return "other"
        rest = s[3:]
        if len(rest) < 2 or rest[1] != "o":
            return "bucket"
        if len(rest) == 2:
            return "list" if self.method == "GET" else "other"
        if len(rest) >= 4 and rest[3] == "compose":
            return "compose"
        if len(rest) >= 8 and rest[3] in ("rewriteTo", "copyTo"):
            return "rewrite" if rest[3] == "rewriteTo" else "copy"
        if self.method == "GET":
            return "download" if self.param("alt") == "media" else "get"
        return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(self.method, "other")

    @property
    def bucket(self) -> str | None:
        """The bucket an object request writes to (a rewrite's or copy's destination)."""
        s = self.segments
        if self.operation in ("rewrite", "copy"):
            return unquote(s[8])
        if len(s) >= 4 and s[:3] in (["storage", "v1", "b"], ["download", "storage", "v1"]):
            return unquote(s[3] if s[0] == "storage" else s[4])
        if len(s) >= 5 and s[:4] == ["upload", "storage", "v1", "b"]:
            return unquote(s[4])
        return None

    @property
    def object_name(self) -> str | None:
        """The decoded name of the object the request writes or reads, if it names one.

        A rewrite or copy names its destination; an upload names the object in its query or
        in its JSON metadata.
        """
        s = self.segments
        op = self.operation
        if op.startswith("upload:"):
            name = self.param("name")
            if name is None and isinstance(self.json, dict):
                name = self.json.get("name")
            return name
        if op in ("rewrite", "copy"):
            return unquote(s[10]) if len(s) > 10 else None
        if s[:1] == ["download"]:
            s = s[1:]
        if len(s) >= 6 and s[:3] == ["storage", "v1", "b"] and s[4] == "o":
            return unquote(s[5])
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    proxy: RecordingProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that hung up mid-response: the test that made it sees its error
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _IDLE_TIMEOUT
    server: _Server
    _upstream: http.client.HTTPConnection | None = None

    def setup(self) -> None:
        super().setup()
        self.server.proxy.opened(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if self._upstream is not None:
            self._upstream.close()
        self.server.proxy.closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the emulator keeps its own log

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        proxy = self.server.proxy
        body = self._body()
        parts = urlsplit(self.path)
        record = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={
                k.lower(): v
                for k, v in self.headers.items()
                if k.lower() in proxy.header_names or k.lower().startswith("x-goog-")
            },
            json=_json_of(self.headers.get("Content-Type", ""), body),
        )
        proxy.add(record)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        try:
            # Enforcing, a write holds its object's lock from the check through the emulator's
            # answer, so that it and every other write of that object happen one at a time.
            with proxy.object_lock(record):
                if proxy.enforce_preconditions and unmet_precondition(record, self._metadata):
                    record.status = 412
                    self._send(412, "application/json", _PRECONDITION_FAILED)
                    return
                response = self._send_upstream(self.command, self.path, body, headers)
        except OSError as exc:
            record.status = 502
            self._send(502, "text/plain", f"recording proxy: upstream failed: {exc}".encode())
            return
        record.status = response.status
        self._relay(response)

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _metadata(self, bucket: str, name: str) -> dict[str, Any] | None:
        """The emulator's metadata of an object, or None if there is none."""
        path = f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        response = self._send_upstream("GET", path, b"", {"Accept": "application/json"})
        body = response.read()
        if response.status == 404:
            return None
        if response.status != 200:
            raise OSError(f"metadata of {bucket}/{name}: HTTP {response.status}")
        metadata: dict[str, Any] = json.loads(body)
        return metadata

    def _send_upstream(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        host, port = self.server.proxy.target
        for attempt in (1, 2):
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(host, port, timeout=_UPSTREAM_TIMEOUT)
            try:
                self._upstream.request(method, path, body=body, headers=headers)
                return self._upstream.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive upstream connection the emulator closed meanwhile: reconnect once.
                self._upstream.close()
                self._upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _relay(self, response: http.client.HTTPResponse) -> None:
        proxy = self.server.proxy
        no_body = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        length = response.getheader("Content-Length")
        content = b"" if no_body or length is not None else response.read()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            lower = name.lower()
            if lower in _HOP_BY_HOP or lower == "content-length":
                continue
            if lower == "location" and value.startswith(proxy.target_url):
                value = proxy.url + value[len(proxy.target_url) :]
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", length)
        elif not no_body:
            self.send_header("Content-Length", str(len(content)))
        if response.will_close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if no_body:
            response.read()
        elif length is None:
            self.wfile.write(content)
        else:
            while chunk := response.read(_COPY):
                self.wfile.write(chunk)
        if response.will_close and self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _forward


def _json_of(content_type: str, body: bytes) -> Any:
    """The JSON a request carries: its body, or the first part of a multipart/related body."""
    lower = content_type.lower()
    with contextlib.suppress(ValueError):
        if lower.startswith("application/json") and 0 < len(body) <= _JSON_LIMIT:
            return json.loads(body)
        if lower.startswith("multipart/related"):
            return _metadata_part(content_type, body[:_JSON_LIMIT])
    return None


def _metadata_part(content_type: str, head: bytes) -> Any:
    """The JSON of a multipart upload's first part (its metadata), from the body's first bytes."""
    boundary = ""
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        return None
    parts = head.split(b"--" + boundary.encode())
    if len(parts) < 3:  # preamble, the metadata part, and at least the start of the media part
        return None
    headers, _, payload = parts[1].partition(b"\r\n\r\n")
    if b"application/json" not in headers.lower():
        return None
    return json.loads(payload.strip())


class RecordingProxy:
    """Forward 127.0.0.1:<port> to ``target``, recording every request (see the module doc)."""

    def __init__(
        self,
        target: str,
        *,
        headers: Iterable[str] = DEFAULT_HEADERS,
        enforce_preconditions: bool = False,
    ) -> None:
        parts = urlsplit(target if "://" in target else f"http://{target}")
        if parts.hostname not in ("127.0.0.1", "localhost") or parts.scheme != "http":
            raise ValueError(f"the proxy only forwards to http:// on loopback, got {target!r}")
        self.target = (parts.hostname, parts.port or 80)
        self.target_url = f"http://{parts.hostname}:{self.target[1]}"
        self.header_names = frozenset(h.lower() for h in headers)
        self.enforce_preconditions = enforce_preconditions
        self._lock = threading.Lock()
        self._object_locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.name = "recording-proxy"

    def start(self) -> RecordingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every client connection; waits at most a few seconds."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> RecordingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- called by the handler threads --------------------------------------------------------

    def add(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    @contextlib.contextmanager
    def object_lock(self, request: RecordedRequest) -> Iterator[None]:
        """Hold the lock of the object a write names (only when enforcing preconditions)."""
        key = (request.bucket or "", request.object_name or "")
        if not self.enforce_preconditions or request.operation not in WRITES or not key[1]:
            yield
            return
        with self._lock:
            lock, users = self._object_locks.get(key, (threading.Lock(), 0))
            self._object_locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, users = self._object_locks[key]
                if users == 1:
                    del self._object_locks[key]
                else:
                    self._object_locks[key] = (lock, users - 1)

    # -- what tests read ----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request since the last ``clear``, in the order they arrived."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> list[RecordedRequest]:
        """The requests recorded so far; recording starts again from none."""
        with self._lock:
            recorded, self._requests = self._requests, []
        return recorded

    def find(
        self,
        operation: str | None = None,
        object_name: str | None = None,
        *,
        method: str | None = None,
    ) -> list[RecordedRequest]:
        """The recorded requests of that operation, on that object, with that method."""
        return [
            r
            for r in self.requests
            if (operation is None or r.operation == operation)
            and (object_name is None or r.object_name == object_name)
            and (method is None or r.method == method)
        ]


def main() -> None:
    """Run a proxy in the foreground, printing one JSON line per request, until interrupted."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--target", required=True, help="http://127.0.0.1:PORT of the emulator")
    p.add_argument(
        "--enforce-preconditions", action="store_true", help="answer 412 where GCS would"
    )
    args = p.parse_args()
    with RecordingProxy(args.target, enforce_preconditions=args.enforce_preconditions) as proxy:
        print(proxy.url, flush=True)
        seen = 0
        with contextlib.suppress(KeyboardInterrupt):
            while not threading.Event().wait(0.5):
                for r in proxy.requests[seen:]:
                    if r.status is None:
                        break  # printed once its response is back, in arrival order
                    line = {"op": r.operation, "method": r.method, "path": r.path}
                    print(json.dumps({**line, "query": r.query, "status": r.status}), flush=True)
                    seen += 1


if __name__ == "__main__":
    main()
