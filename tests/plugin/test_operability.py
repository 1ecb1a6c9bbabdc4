"""Operating ``cargohold serve``: grpc.health.v1, the Prometheus endpoint, the slow-RPC log.

Every test runs a real ``cargohold serve`` process; the backend is moto server, behind a TCP
proxy (on 127.0.0.1) where a test needs the backend to go away or stop answering.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

import cargohold
from cargohold.errors import InvalidArgumentError
from cargohold.plugin.gen import content_pb2 as pb
from cargohold.plugin.metrics import parse_metrics_address
from tests.emulators._process import free_port
from tests.emulators.moto import S3Endpoint

from .serveproc import ServeProcess, WriteStream, serve_process
from .stall_proxy import StallingProxy

pytestmark = pytest.mark.multiprocess

MiB = 1024 * 1024
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
CONTENT = "containerd.services.content.v1.Content"


def _upstream(endpoint: S3Endpoint) -> tuple[str, int]:
    host, _, port = endpoint.url.removeprefix("http://").rpartition(":")
    return host, int(port)


@contextlib.contextmanager
def _served_behind_proxy(
    endpoint: S3Endpoint, bucket: str, name: str, *args: str
) -> Iterator[tuple[StallingProxy, ServeProcess]]:
    """A serve process (node n1, ``args``) whose store reaches S3 through a stalling proxy."""
    with StallingProxy(_upstream(endpoint)) as proxy:
        url = endpoint.store_url(bucket, endpoint_url=proxy.url)
        with serve_process(name, ["--store", url, "--node-id", "n1", *args]) as served:
            yield proxy, served


def _health(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
    reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return int(reply.status)


def _eventually(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``check()`` holds; fails after ``timeout``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what} not within {timeout}s"
        time.sleep(0.1)
    return time.monotonic() - started


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``http://127.0.0.1:PORT/metrics``, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_health_follows_the_backend(moto_endpoint: S3Endpoint, s3_bucket: str) -> None:
    interval = ["--health-interval", "0.3", "--health-timeout", "1"]
    with _served_behind_proxy(moto_endpoint, s3_bucket, "health", *interval) as (proxy, served):
        channel = served.channel()
        assert _health(channel) == SERVING
        assert _health(channel, CONTENT) == SERVING

        proxy.set_mode("refuse")  # the service went away
        _eventually(lambda: _health(channel) == NOT_SERVING, 15, "NOT_SERVING")
        assert _health(channel, CONTENT) == NOT_SERVING
        proxy.set_mode("forward")
        _eventually(lambda: _health(channel) == SERVING, 15, "SERVING again")

        proxy.set_mode("stall")  # the service stopped answering: the probe times out
        started = time.monotonic()
        _eventually(lambda: _health(channel) == NOT_SERVING, 15, "NOT_SERVING on a stall")
        # Checks answer from memory while the probe hangs: each one is fast.
        for _ in range(5):
            began = time.monotonic()
            assert _health(channel) == NOT_SERVING
            assert time.monotonic() - began < 1
        assert time.monotonic() - started < 15
        proxy.set_mode("refuse")  # drop the stalled connections, then come back
        proxy.set_mode("forward")
        _eventually(lambda: _health(channel) == SERVING, 20, "SERVING after the stall")
        logs = served.logs()
        assert any(e.get("msg") == "store unreachable: NOT_SERVING" for e in logs)
        channel.close()


def test_metrics_endpoint(moto_endpoint: S3Endpoint, s3_bucket: str) -> None:
    port = free_port()
    url = moto_endpoint.store_url(s3_bucket, part_size=str(5 * MiB))
    args = ["--store", url, "--node-id", "n1", "--metrics-address", f"127.0.0.1:{port}"]
    data = os.urandom(12 * MiB)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with serve_process("metrics", args) as served:
        channel = served.channel()
        stub = served.stub(channel)
        before = _scrape(port)
        assert _sample(before, "cargohold_store_up") == 1
        assert _sample(before, "cargohold_open_writers") == 0

        stream = WriteStream(stub)
        for offset in range(0, len(data), MiB):
            stream.request(
                pb.WriteContentRequest(
                    action=pb.WRITE, ref="r/1/blob", offset=offset, data=data[offset : offset + MiB]
                )
            )
        assert _sample(_scrape(port), "cargohold_open_writers") == 1
        commit = pb.WriteContentRequest(
            action=pb.COMMIT, ref="r/1/blob", offset=len(data), total=len(data), expected=digest
        )
        assert stream.request(commit).digest == digest
        assert stream.done.wait(30)
        got = b"".join(r.data for r in stub.Read(pb.ReadContentRequest(digest=digest)))
        assert got == data
        with pytest.raises(grpc.RpcError) as missing:
            stub.Info(pb.InfoRequest(digest="sha256:" + "0" * 64))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        channel.close()

        def settled() -> bool:
            found = _scrape(port)
            return sum(v for (n, _), v in found.items() if n == "cargohold_rpc_in_flight") == 0

        _eventually(settled, 10, "the RPCs to finish")
        s = _scrape(port)
        content = {"service": CONTENT}
        handled = "cargohold_rpc_handled_total"
        assert _sample(s, handled, **content, method="Write", code="OK") == 1
        assert _sample(s, handled, **content, method="Read", code="OK") == 1
        assert _sample(s, handled, **content, method="Info", code="NOT_FOUND") == 1
        count = "cargohold_rpc_duration_seconds_count"
        assert _sample(s, count, **content, method="Write") == 1
        assert (
            _sample(s, "cargohold_rpc_duration_seconds_bucket", **content, method="Info", le="+Inf")
            == 1
        )
        assert _sample(s, "cargohold_rpc_received_bytes_total", **content, method="Write") >= len(
            data
        )
        assert _sample(s, "cargohold_rpc_sent_bytes_total", **content, method="Read") >= len(data)
        assert _sample(s, "cargohold_open_writers") == 0
        assert _sample(s, "cargohold_part_uploads_in_flight") == 0
        requests = "cargohold_driver_requests_total"
        assert _sample(s, requests, operation="upload_part", outcome="ok") >= 2
        assert _sample(s, requests, operation="head", outcome="not_found") >= 1
        assert (
            _sample(s, "cargohold_driver_request_duration_seconds_count", operation="upload_part")
            >= 2
        )


def test_slow_rpc_is_logged_with_its_stack(moto_endpoint: S3Endpoint, s3_bucket: str) -> None:
    args = ["--slow-rpc-seconds", "1", "--health-interval", "0"]
    with _served_behind_proxy(moto_endpoint, s3_bucket, "slow-rpc", *args) as (proxy, served):
        channel = served.channel()
        stub = served.stub(channel)
        digest = "sha256:" + "1" * 64
        proxy.set_mode("stall")
        future = stub.Info.future(pb.InfoRequest(digest=digest), timeout=30)
        entry = served.wait_for_log(lambda e: e.get("msg", "").startswith("slow RPC:"), 20)
        assert entry["rpc"] == f"{CONTENT}/Info"
        assert entry["subject"] == digest
        assert entry["busy_seconds"] >= 1
        assert "servicer.py" in entry["stack"] and "head" in entry["stack"]
        proxy.set_mode("refuse")  # the stuck request fails; the RPC ends
        with pytest.raises(grpc.RpcError):
            future.result(timeout=120)
        served.wait_for_log(lambda e: e.get("msg") == "slow RPC finished", 20)
        channel.close()


def test_driver_outcome_names() -> None:
    from cargohold.drivers.wrapper import outcome_of
    from cargohold.errors import FailedPreconditionError, NotFoundError

    assert outcome_of(NotFoundError("x")) == "not_found"
    assert outcome_of(FailedPreconditionError("x")) == "failed_precondition"
    assert outcome_of(InvalidArgumentError("x")) == "invalid_argument"
    assert outcome_of(OSError("x")) == "error"


def test_parse_metrics_address() -> None:
    assert parse_metrics_address("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_metrics_address("[::1]:9000") == ("::1", 9000)
    for bad in ("9000", "host:", ":9000", "host:port", "host:70000"):
        with pytest.raises(InvalidArgumentError):
            parse_metrics_address(bad)


def test_health_probe_is_bounded_and_the_newest_verdict_wins() -> None:
    from cargohold.plugin.health import HealthReporter

    release = threading.Event()
    started: list[int] = []
    mode = {"now": "hang"}

    def probe() -> None:
        started.append(1)
        if mode["now"] == "hang":
            release.wait(30)
        elif mode["now"] == "fail":
            raise cargohold.UnavailableError("down")

    reporter = HealthReporter(probe, interval=60, timeout=0.3)
    began = time.monotonic()
    reporter.probe_once()
    assert time.monotonic() - began < 2 and reporter.healthy is False
    reporter.probe_once()
    reporter.probe_once()  # two probes hang already: no third one is started
    assert len(started) == 2
    mode["now"] = "ok"
    release.set()
    _eventually(lambda: reporter.healthy is True, 5, "the late probes to report")
    mode["now"] = "fail"
    reporter.probe_once()
    assert reporter.healthy is False
    mode["now"] = "ok"
    reporter.probe_once()
    assert reporter.healthy is True
    reporter.stop()
