"""Fixtures: an in-process ``ContentServer`` on loopback TCP and a gRPC stub talking to it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

import cargohold
from cargohold.plugin.gen import content_pb2_grpc as pb_grpc
from cargohold.plugin.server import DEFAULT_ENGINE, ContentServer, parse_address
from cargohold.store import Store

PLUGIN_KINDS = {"memory": "memory_store_url", "s3": "s3_store_url"}


@dataclass
class Served:
    """A running server, a stub connected to it, and the store behind it."""

    server: ContentServer
    stub: pb_grpc.ContentStub
    channel: grpc.Channel
    store: Store
    url: str


def start_served(url: str, node_id: str = "node-a", engine: str | None = None) -> Served:
    store = cargohold.open_store(url)
    if engine is None:
        engine = os.environ.get("CARGOHOLD_SERVE_ENGINE", DEFAULT_ENGINE)  # as `serve --engine`
    server = ContentServer(
        store, node_id, parse_address("tcp://127.0.0.1:0"), workers=8, engine=engine
    )
    server.start()
    channel = grpc.insecure_channel(
        f"127.0.0.1:{server.port}", options=[("grpc.max_receive_message_length", 64 << 20)]
    )
    return Served(server, pb_grpc.ContentStub(channel), channel, store, url)  # type: ignore[no-untyped-call]


def stop_served(served: Served) -> None:
    served.channel.close()
    served.server.stop(grace=2)
    served.store.close()


@pytest.fixture(params=list(PLUGIN_KINDS))
def plugin_store_url(request: pytest.FixtureRequest) -> str:
    """A fresh store URL on memory:// and on S3 (moto)."""
    url: str = request.getfixturevalue(PLUGIN_KINDS[request.param])
    return url


@pytest.fixture(params=["file", "s3"])
def shared_plugin_store_url(request: pytest.FixtureRequest) -> str:
    """A fresh store URL that several processes can open: file:// and S3 (moto)."""
    url: str = request.getfixturevalue(f"{request.param}_store_url")
    return url


@contextlib.contextmanager
def serving(url: str, engine: str | None = None) -> Iterator[Served]:
    """``start_served`` for the length of a ``with`` block."""
    s = start_served(url, engine=engine)
    try:
        yield s
    finally:
        stop_served(s)


@pytest.fixture
def served(plugin_store_url: str) -> Iterator[Served]:
    with serving(plugin_store_url) as s:
        yield s


@pytest.fixture(scope="session")
def go_test_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go harness of tests/gosuite (containerd's proxy client), built once per session."""
    from .gorunner import build_test_binary

    return build_test_binary(tmp_path_factory.mktemp("gosuite"))
