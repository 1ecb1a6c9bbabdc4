"""A real ``cargohold serve`` process with seeded content, and the fuzzing budget.

The budget: ``CARGOHOLD_FUZZ_EXAMPLES`` examples per test (default 30), no hypothesis deadline
(each gRPC call carries its own), so CI stays within a minute or two. Raise it locally to fuzz
longer, e.g. ``CARGOHOLD_FUZZ_EXAMPLES=2000 pytest tests/fuzz``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from hypothesis import HealthCheck, settings

from cargohold import Store
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.gen import content_pb2_grpc as pb_grpc

FUZZ_EXAMPLES = int(os.environ.get("CARGOHOLD_FUZZ_EXAMPLES", "30"))
fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
"""The settings of every fuzz test."""

CALL_DEADLINE = 20.0
"""Seconds any one gRPC call may take: a call still running then is a hang, a failure."""
SERVICE = "/containerd.services.content.v1.Content/"
TYPED_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
    }
)
"""The codes a hostile request may end with; INTERNAL, UNKNOWN and a deadline never."""

SEED_REF = "seed/ingestion"
SEED_INGEST_DATA = b"half of a blob " * 300
SEED_INGEST_FULL = SEED_INGEST_DATA * 2
SEED_BLOBS = {
    "labelled": (b"seeded blob " * 4000, {"seed": "a", "containerd.io/gc.root": "x"}),
    "empty": (b"", {}),
    "small": (b"s", {"k": "v" * 100}),
}
_T = TypeVar("_T")


def sha(data: bytes) -> str:
    """The sha256 digest string of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


SEED_DIGESTS = frozenset(sha(data) for data, _ in SEED_BLOBS.values())


def seed_store(store: Store) -> None:
    """Commit the seed blobs with their labels and leave the seed ingestion open."""
    for data, labels in SEED_BLOBS.values():
        with store.writer(f"seed/{sha(data)}") as writer:
            writer.write(data)
            writer.commit(len(data), sha(data), labels=labels)
    with store.writer(SEED_REF) as writer:
        writer.write(SEED_INGEST_DATA)


def check_seeded(store: Store) -> None:
    """The seeded content is exactly as ``seed_store`` left it."""
    for data, labels in SEED_BLOBS.values():
        info = store.info(sha(data))
        assert (info.size, info.labels) == (len(data), labels)
        with store.reader_at(sha(data)) as reader:
            assert reader.read_at(0, len(data) + 1) == data
    assert store.status(SEED_REF).offset == len(SEED_INGEST_DATA)


class UntypedError(AssertionError):
    """A call ended in a status that is not a typed error (INTERNAL, UNKNOWN, a deadline...)."""


@dataclass
class Served:
    """A ``cargohold serve`` process, a channel to it and what was seeded into it."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    channel: grpc.Channel
    stub: pb_grpc.ContentStub
    seed_status: pb.Status = field(default_factory=pb.Status)

    def call(self, fn: Callable[[], _T]) -> _T | grpc.StatusCode:
        """Run one call; its result, or the typed code it failed with (else UntypedError)."""
        try:
            return fn()
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            if code not in TYPED_CODES:
                raise UntypedError(f"{code}: {exc.details()}") from exc  # type: ignore[attr-defined]
            assert self.process.poll() is None, "the server died"
            return code  # type: ignore[no-any-return]

    def raw(self, method: str, request: bytes, reply: Any, *, stream: bool = False) -> Any:
        """Send already serialized bytes (which may hold invalid UTF-8) to ``method``."""
        kind = self.channel.unary_stream if stream else self.channel.unary_unary
        rpc = kind(
            SERVICE + method, request_serializer=None, response_deserializer=reply.FromString
        )
        if stream:
            return self.call(lambda: list(rpc(request, timeout=CALL_DEADLINE)))
        return self.call(lambda: rpc(request, timeout=CALL_DEADLINE))

    def write(self, requests: list[pb.WriteContentRequest]) -> Any:
        """One Write stream of ``requests``: the replies, or the typed code it ended with."""
        return self.call(lambda: list(self.stub.Write(iter(requests), timeout=CALL_DEADLINE)))

    def check_seeds(self) -> None:
        """The seeded blobs, their labels and the seeded ingestion are exactly as seeded."""
        assert self.process.poll() is None, "the server died"
        for data, labels in SEED_BLOBS.values():
            digest = sha(data)
            info = self.stub.Info(pb.InfoRequest(digest=digest), timeout=CALL_DEADLINE).info
            assert (info.digest, info.size, dict(info.labels)) == (digest, len(data), labels)
            read = self.stub.Read(pb.ReadContentRequest(digest=digest), timeout=CALL_DEADLINE)
            assert b"".join(r.data for r in read) == data
        status = self.stub.Status(pb.StatusRequest(ref=SEED_REF), timeout=CALL_DEADLINE).status
        assert status == self.seed_status


def _seed(served: Served) -> None:
    for data, labels in SEED_BLOBS.values():
        replies = served.stub.Write(
            iter(
                [
                    pb.WriteContentRequest(action=pb.STAT, ref=f"seed/{sha(data)}"),
                    pb.WriteContentRequest(
                        action=pb.COMMIT,
                        data=data,
                        total=len(data),
                        expected=sha(data),
                        labels=labels,
                    ),
                ]
            ),
            timeout=CALL_DEADLINE,
        )
        assert list(replies)[-1].digest == sha(data)
    opening = [
        pb.WriteContentRequest(
            action=pb.WRITE,
            ref=SEED_REF,
            total=len(SEED_INGEST_FULL),
            expected=sha(SEED_INGEST_FULL),
            data=SEED_INGEST_DATA,
        )
    ]
    assert list(served.stub.Write(iter(opening), timeout=CALL_DEADLINE))[-1].offset == len(
        SEED_INGEST_DATA
    )
    served.seed_status = served.stub.Status(
        pb.StatusRequest(ref=SEED_REF), timeout=CALL_DEADLINE
    ).status


def start_serve(url: str, work: Path) -> Served:
    """Start ``cargohold serve`` on a unix socket under ``work`` and seed it."""
    sock = work / "content.sock"
    log = work / "serve.log"
    argv = [sys.executable, "-m", "cargohold", "--store", url, "serve", "--address"]
    argv += [f"unix://{sock}", "--node-id", "fuzz", "--grace", "1", "--close-timeout", "1"]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 60
    while not sock.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"cargohold serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    channel = grpc.insecure_channel(
        f"unix://{sock}", options=[("grpc.max_receive_message_length", 128 << 20)]
    )
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = pb_grpc.ContentStub(channel)  # type: ignore[no-untyped-call]
    served = Served(url, process, log, channel, stub)
    _seed(served)
    served.check_seeds()
    return served


def stop_serve(served: Served) -> str:
    """Stop the process by its PID (SIGTERM, then SIGKILL) and return its log."""
    served.channel.close()
    if served.process.poll() is None:
        served.process.send_signal(signal.SIGTERM)
        try:
            served.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(served.process.pid, signal.SIGKILL)
            served.process.wait(timeout=30)
    return served.log.read_text(errors="replace")


@pytest.fixture(scope="module", params=["memory", "file"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A seeded ``cargohold serve`` on memory:// or file://, shared by a module's tests."""
    work = tmp_path_factory.mktemp("fuzz-serve")
    if request.param == "memory":
        url = f"memory://fuzz-{uuid.uuid4().hex}"
    else:
        url = f"file://{work / 'store'}"
    served = start_serve(url, work)
    try:
        yield served
        served.check_seeds()
    finally:
        log = stop_serve(served)
    assert "Traceback" not in log, log[-4000:]
