"""The h2 engine (``cargohold serve``'s default; ``--engine grpcio`` picks grpcio's server): the
content service over a hand-written HTTP/2 + gRPC layer on asyncio (uvloop when installed).

Why: containerd reads a layer in one Read RPC per 32 KiB, and grpcio's server spends about
0.45-0.8 ms of CPU per such RPC; this layer spends a fraction of that (see notes/h2engine.md).

What stays the same: the handlers. The content servicer, its request parsing
(registration.py), the health servicer and the call tracker (calls.py: slow-RPC watchdog,
metrics, the stuck-RPC report at shutdown) are registered on ``H2Server`` as on grpcio's
server, and handlers run on a bounded thread pool, never on the event loop. The one exception
is a fast path (``H2Server.add_fast_path``): a Read whose bytes a cached reader's fetched
read-ahead window already holds is answered on the loop, with the handler's own answer
(``ContentServicer.read_now``); anything else goes to the handler.

Modules, one job each: ``frames`` (HTTP/2 frame constants and builders), ``grpcwire`` (gRPC
message framing, response header and status trailer blocks, ``grpc-timeout``), ``stream``
(one call's state shared by the loop and its handler thread), ``context`` (the
``grpc.ServicerContext`` surface handlers use), ``connection`` (one HTTP/2 connection: frame
parsing, SETTINGS, PING, flow control both ways, RST_STREAM, GOAWAY), ``dispatch`` (running a
handler and sending its responses and status), ``server`` (sockets, the loop thread, handler
lookup, shutdown).

Left out compared with grpcio's server:

- Compression: no ``grpc-encoding`` is accepted or sent (containerd sends none); a compressed
  request message ends its call with INTERNAL.
- Metadata a handler sends (initial or trailing) is dropped; the plugin sends none.
- No TLS, no HTTP/1.1 upgrade, no server push, no priorities (ignored), no keepalive pings of
  its own (it answers the client's PINGs), no per-message size limit on responses.
- Interceptors are asked for a method's handler once per method and path, not once per call
  (the call tracker builds its wrapper once per method anyway).
- Termination callbacks of a call ended by the client (RST_STREAM), a deadline or shutdown run
  on the event loop; the plugin's (metrics, health Watch) only take short locks.
"""

from __future__ import annotations

from .server import H2Server

__all__ = ["H2Server"]
