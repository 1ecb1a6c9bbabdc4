"""``cargohold serve``: run the containerd content plugin (registered on the CLI by cli.py).

This module imports nothing of gRPC at import time, so ``cargohold --help`` works without the
``[grpc]`` extra and ``serve`` can print the install hint instead of a traceback.

Shutdown: SIGTERM (exit 0) or SIGINT (exit 130) stops the server within ``--grace`` plus
``--close-timeout`` seconds (plus about two seconds of bookkeeping), then the process ends with
``os._exit`` after flushing its logs. ``os._exit`` because a writer stuck in a driver call
leaves a pool thread behind, and Python joins pool threads at exit: a normal exit would wait
for the stuck call. A second signal during shutdown exits at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import NoReturn

import click

from ..cli_failures import EXIT_FAILURE, EXIT_USAGE, CliFailure, Where, emit, failure_for
from ..errors import ContentError, InvalidArgumentError, UnavailableError

__all__ = ["serve"]

_log = logging.getLogger("cargohold.plugin")

_INSTALL = CliFailure(
    "error", "serve needs grpcio", "install it with: pip install 'cargohold[grpc]'", EXIT_USAGE
)
_EXTRA_MODULES = ("grpc", "grpc_health", "google.protobuf", "prometheus_client", "hpack")
STORE_CLOSE_SECONDS = 1.0
"""How long the store's own background threads get to stop after a clean server stop."""
STORE_CLOSE_LEFT_BEHIND = 0.25
"""The same after an unclean one: what is stuck stays stuck, there is no point waiting."""
NODE_RELEASE_SECONDS = 2.0
"""How long letting go of the node id may take (one delete); a lease left behind expires, and
a successor on this machine takes over at once when this process is gone."""


def _fail(ctx: click.Context, failure: CliFailure | BaseException) -> NoReturn:
    """Fail as every CLI command does: one line (JSON with ``cargohold --json``), exit 2/1/130.

    Under the ``cargohold`` group the CLI prints the failure; run alone (``python -m
    cargohold.plugin``) this prints it.
    """
    if not isinstance(failure, CliFailure):
        failure = failure_for(failure, Where("serve"))
    if ctx.parent is not None:
        raise failure
    emit(failure, as_json=False)
    sys.exit(failure.code)


def _start_failure(exc: BaseException) -> CliFailure | BaseException:
    """Failures to listen, described with what to do about them."""
    if isinstance(exc, UnavailableError):
        hint = "stop the server that uses that socket, or give another --address"
        return CliFailure("unavailable", str(exc), hint, EXIT_FAILURE)
    if isinstance(exc, OSError | RuntimeError):  # RuntimeError: grpc's failed bind
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        hint = "check that no other process uses --address or --metrics-address"
        return CliFailure("error", f"cannot listen: {reason}", hint, EXIT_FAILURE)
    return exc


def _missing_extra(exc: ImportError) -> bool:
    name = exc.name or ""
    return any(name == m or name.startswith(m + ".") for m in _EXTRA_MODULES)


def _store_url(ctx: click.Context, own: str | None) -> str:
    """``serve --store``, else the global ``cargohold --store``, else ``$CARGOHOLD_STORE``."""
    url = own
    if url is None and ctx.parent is not None:
        url = ctx.parent.params.get("store_url")
    if url is None:
        url = os.environ.get("CARGOHOLD_STORE")
    if url is None:
        raise InvalidArgumentError(
            "serve needs a store: give --store URL (before or after 'serve') or set CARGOHOLD_STORE"
        )
    if not url.strip():
        raise InvalidArgumentError("the store URL is empty")
    return url


@click.command("serve")
@click.option(
    "--address",
    default="unix:///run/cargohold/content.sock",
    show_default=True,
    help="unix:///path/to.sock, or tcp://127.0.0.1:PORT (loopback only, for tests).",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="Store URL (s3://bucket/prefix, file:///dir, ...). Default: the global "
    "`cargohold --store`, else $CARGOHOLD_STORE.",
)
@click.option(
    "--node-id",
    envvar="CARGOHOLD_NODE_ID",
    default=None,
    help="This host's identity on a shared store: 1-128 of [A-Za-z0-9._-], starting with a "
    "letter or digit. Default: $CARGOHOLD_NODE_ID, else 'm-' + 16 hex digits of the SHA-256 "
    "of /etc/machine-id, else the host name.",
)
@click.option(
    "--node-wait",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds to wait at start while another serve process holds this node id (one "
    "being replaced lets go when it stops) before refusing to start. Default: the store's "
    "lease timeout + 5 (60 + 5).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds in-flight RPCs get to finish at shutdown; then they are cancelled.",
)
@click.option(
    "--close-timeout",
    type=click.FloatRange(min=0),
    default=3.0,
    show_default=True,
    help="Seconds open writers then get to save their state; a writer still busy (stuck in "
    "a storage call) is logged and left, and resumes from its last checkpoint.",
)
@click.option(
    "--metrics-address",
    default=None,
    metavar="HOST:PORT",
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (off by default).",
)
@click.option(
    "--slow-rpc-seconds",
    type=click.FloatRange(min=0),
    default=120.0,
    show_default=True,
    help="Log the stack of any RPC busy this long without progress (0: off).",
)
@click.option(
    "--health-interval",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds between probes of the store behind grpc.health.v1 (0: no probing).",
)
@click.option(
    "--health-timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="A probe not answered in this many seconds makes the server NOT_SERVING.",
)
@click.option(
    "--write-behind/--no-write-behind",
    default=True,
    show_default=True,
    help="Answer each WRITE as soon as it is checked and apply its bytes while the client "
    "sends the next one (Status still counts answered bytes at once).",
)
@click.option(
    "--engine",
    type=click.Choice(["h2", "grpcio"]),
    envvar="CARGOHOLD_SERVE_ENGINE",
    default="h2",
    show_default=True,
    help="gRPC server: h2, a purpose-built HTTP/2 layer that costs a third of grpcio's CPU "
    "per Read RPC, or grpcio's own server. Default: $CARGOHOLD_SERVE_ENGINE, else h2.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    address: str,
    store_url: str | None,
    node_id: str | None,
    node_wait: float | None,
    log_level: str,
    grace: float,
    close_timeout: float,
    metrics_address: str | None,
    slow_rpc_seconds: float,
    health_interval: float,
    health_timeout: float,
    write_behind: bool,
    engine: str,
) -> None:
    """Serve containerd's content service (a proxy content plugin) from a cargohold store."""
    try:
        import cargohold

        from .logs import configure_logging
        from .nodelease import NodeLease, NodeState
        from .ownership import default_node_id, validate_node_id
        from .server import ContentServer, Operations, parse_address, run_bounded

        if metrics_address is not None:
            from .metrics import parse_metrics_address
        if engine == "h2":
            from .h2 import H2Server  # noqa: F401  (fails here, with the install hint)
    except ImportError as exc:
        if not _missing_extra(exc):
            raise
        _fail(ctx, _INSTALL)

    configure_logging(log_level)
    try:
        url = _store_url(ctx, store_url)
        listen = parse_address(address)
        node = validate_node_id(node_id) if node_id is not None else default_node_id()
        ops = Operations(
            health_interval=health_interval,
            health_timeout=health_timeout,
            slow_rpc_seconds=slow_rpc_seconds,
            metrics_address=parse_metrics_address(metrics_address) if metrics_address else None,
            write_behind=write_behind,
        )
        store = cargohold.open_store(url)
    except (KeyboardInterrupt, ContentError, OSError) as exc:
        _fail(ctx, exc)

    signals: list[int] = []
    requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if requested.is_set():
            _log.warning("second signal: exiting now", extra={"signal": name})
            _exit(130 if signum == signal.SIGINT else 1)
        _log.info("signal received", extra={"signal": name})
        signals.append(signum)
        requested.set()

    # From here on a signal asks for the bounded shutdown below (even one that arrives while
    # the server starts), never a KeyboardInterrupt in the middle of something.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    wait = node_wait if node_wait is not None else store.lease_timeout + 5
    node_lease = NodeLease(store, node, wait=wait)
    node_lease.start()
    state = node_lease.settled(wait + 5, requested)

    def stopped_code() -> int:
        return 130 if signals and signals[0] == signal.SIGINT else 0

    def give_up() -> None:  # before serving: let go of the node id, then the store
        run_bounded(node_lease.close, NODE_RELEASE_SECONDS, "node-release")
        run_bounded(store.close, STORE_CLOSE_SECONDS, "store-close")

    if state is NodeState.CONFLICT or requested.is_set():
        give_up()
        if state is not NodeState.CONFLICT:
            _exit(stopped_code())
        hint = "give each serve process its own --node-id, or stop that one first"
        _fail(ctx, CliFailure("unavailable", node_lease.conflict_message(), hint, EXIT_FAILURE))
    if state is NodeState.PENDING:
        _log.warning("serving before the node's lease is taken (the store does not answer)")
    try:
        server = ContentServer(store, node, listen, operations=ops, engine=engine)
        server.start()
    except (ContentError, OSError, RuntimeError) as exc:
        give_up()
        _fail(ctx, _start_failure(exc))
    ready = f"ready {listen} {server.port or ''}".rstrip()
    print(ready, file=sys.stderr, flush=True)
    displaced = False
    while not requested.wait(1.0):
        if node_lease.state in (NodeState.CONFLICT, NodeState.LOST):
            if node_lease.state is NodeState.CONFLICT:
                _log.error(node_lease.conflict_message())
            _log.error("stopping: this process no longer holds its node id")
            displaced = True
            break
    started = time.monotonic()
    clean = False
    try:
        clean = server.stop(grace, close_timeout)
    except Exception:  # whatever went wrong, the process still ends
        _log.exception("shutdown failed")
    # After the last RPC: a successor may take over from here.
    run_bounded(
        node_lease.close, NODE_RELEASE_SECONDS if clean else STORE_CLOSE_LEFT_BEHIND, "node-release"
    )
    bound = STORE_CLOSE_SECONDS if clean else STORE_CLOSE_LEFT_BEHIND
    if not run_bounded(store.close, bound, "store-close"):
        _log.warning("the store's threads did not stop in time; leaving them")
    _log.info("exiting", extra={"shutdown_seconds": round(time.monotonic() - started, 3)})
    _exit(EXIT_FAILURE if displaced else stopped_code())


def _exit(code: int) -> NoReturn:
    """Flush logs and output, then end the process without joining leftover threads."""
    for handler in logging.getLogger("cargohold").handlers:
        handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
