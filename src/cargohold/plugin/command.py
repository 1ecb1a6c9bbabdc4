"""``cargohold serve``: run the containerd content plugin (the lead registers it on the CLI)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

import click

from ..errors import ContentError

__all__ = ["serve"]

_log = logging.getLogger("cargohold.plugin")


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
    envvar="CARGOHOLD_STORE",
    required=True,
    help="Store URL (s3://bucket/prefix, file:///dir, ...). Default: $CARGOHOLD_STORE.",
)
@click.option(
    "--node-id",
    envvar="CARGOHOLD_NODE_ID",
    default=None,
    help="This host's identity on a shared store. Default: a hash of /etc/machine-id.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
@click.option(
    "--grace",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds in-flight RPCs get to finish at shutdown.",
)
def serve(address: str, store_url: str, node_id: str | None, log_level: str, grace: float) -> None:
    """Serve containerd's content service (a proxy content plugin) from a cargohold store."""
    import cargohold

    from .logs import configure_logging
    from .ownership import default_node_id
    from .server import ContentServer, parse_address

    configure_logging(log_level)
    try:
        listen = parse_address(address)
        store = cargohold.open_store(store_url)
        server = ContentServer(store, node_id or default_node_id(), listen)
        server.start()
    except ContentError as exc:
        raise click.ClickException(str(exc)) from exc

    def on_signal(signum: int, frame: FrameType | None) -> None:
        _log.info("signal received", extra={"signal": signal.Signals(signum).name})
        threading.Thread(target=server.stop, args=(grace,), daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"ready {listen} {server.port or ''}".rstrip(), file=sys.stderr, flush=True)
    try:
        server.wait()
    finally:
        store.close()
