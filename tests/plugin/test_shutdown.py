"""Shutdown always finishes: a real ``cargohold serve`` with a writer stuck on a stalled backend.

The backend is moto server behind a TCP proxy (both on 127.0.0.1) that stops passing bytes in
the middle of an upload. After SIGTERM the process must exit within its grace period plus the
close timeout plus a small margin, log the stuck writer with its ref and stack, and leave the
ingestion resumable: a fresh server resumes it and commits it with the right digest.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import pytest

from cargohold.plugin.gen import content_pb2 as pb
from tests.emulators.moto import S3Endpoint

from .serveproc import WriteStream, serve_process
from .stall_proxy import StallingProxy

pytestmark = pytest.mark.multiprocess

MiB = 1024 * 1024
PART = 5 * MiB
GRACE = 2.0
CLOSE_TIMEOUT = 2.0
MARGIN = 3.5
"""What the exit may take beyond grace + close timeout: gRPC's own stop, bookkeeping, and a
loaded two-core machine."""


def _upstream(endpoint: S3Endpoint) -> tuple[str, int]:
    host, _, port = endpoint.url.removeprefix("http://").rpartition(":")
    return host, int(port)


def _write(stream: WriteStream, ref: str, data: bytes, start: int, *, wait: bool) -> None:
    """WRITE ``data`` from offset ``start`` in 1 MiB requests (waiting for each reply or not)."""
    for offset in range(start, len(data), MiB):
        request = pb.WriteContentRequest(
            action=pb.WRITE, ref=ref, offset=offset, data=data[offset : offset + MiB]
        )
        if wait:
            assert stream.request(request).offset == min(offset + MiB, len(data))
        else:
            stream.send(request)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


def test_sigterm_leaves_a_writer_stuck_on_a_stalled_backend(
    moto_endpoint: S3Endpoint, s3_bucket: str, tmp_path: Path
) -> None:
    import urllib.request

    from tests.emulators._process import free_port

    data = os.urandom(33 * MiB)
    ref = "default/7/layer-test"
    first_leg = 11 * MiB  # two whole parts and a 1 MiB tail, made durable by a close
    options = {"part_size": str(PART), "lease_timeout": "3", "concurrency": "2"}
    metrics_port = free_port()
    with StallingProxy(_upstream(moto_endpoint)) as proxy:
        url = moto_endpoint.store_url(s3_bucket, endpoint_url=proxy.url, **options)
        args = ["--store", url, "--node-id", "n1", "--grace", str(GRACE)]
        args += ["--close-timeout", str(CLOSE_TIMEOUT), "--slow-rpc-seconds", "1"]
        args += ["--metrics-address", f"127.0.0.1:{metrics_port}", "--health-interval", "0"]
        with serve_process("shutdown-stalled", args) as served:
            channel = served.channel()
            stub = served.stub(channel)
            first = WriteStream(stub)
            _write(first, ref, data[:first_leg], 0, wait=True)
            stat = first.request(pb.WriteContentRequest(action=pb.STAT, ref=ref))
            assert stat.digest == "sha256:" + hashlib.sha256(data[:first_leg]).hexdigest()
            first.close()
            assert first.done.wait(30)

            second = WriteStream(stub)
            assert second.request(pb.WriteContentRequest(action=pb.STAT, ref=ref)).offset == (
                first_leg
            )
            proxy.set_mode("stall")
            _write(second, ref, data, first_leg, wait=False)

            # The watchdog sees the Write stuck in server code and logs its stack.
            slow = served.wait_for_log(lambda e: e.get("msg", "").startswith("slow RPC"), 30)
            assert slow["rpc"].endswith("/Write") and slow["subject"] == ref
            assert "_settle" in slow["stack"] or "write" in slow["stack"]
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                text = resp.read().decode()
            assert _metric(text, "cargohold_part_uploads_in_flight") >= 1
            assert _metric(text, "cargohold_open_writers") == 1
            assert _metric(text, "cargohold_slow_rpcs_total") >= 1

            code, elapsed = served.signal_and_wait(signal.SIGTERM, timeout=60)
            channel.close()
            assert code == 0
            assert elapsed <= GRACE + CLOSE_TIMEOUT + MARGIN, elapsed
            logs = served.logs()
            left = [e for e in logs if e.get("msg") == "writer left behind"]
            assert left and all(e["ref"] == f"n1/{ref}" for e in left)
            assert any("upload" in e["stack"] or "acquire" in e["stack"] for e in left)
            stopped = [e for e in logs if e.get("msg") == "stopped"]
            assert stopped and stopped[0]["clean"] is False

    # A fresh server, straight to moto: the ingestion resumes and commits intact.
    url = moto_endpoint.store_url(s3_bucket, **options)
    with serve_process("shutdown-resume", ["--store", url, "--node-id", "n1"]) as served:
        channel = served.channel()
        stub = served.stub(channel)
        deadline = time.monotonic() + 30
        while True:  # the stuck server's lease expires 3 s after its last renewal
            stream = WriteStream(stub)
            try:
                stat = stream.request(pb.WriteContentRequest(action=pb.STAT, ref=ref))
                break
            except Exception as exc:
                assert "UNAVAILABLE" in str(exc) and time.monotonic() < deadline, exc
                time.sleep(0.5)
        resumed = stat.offset
        assert 0 <= resumed <= len(data)
        assert stat.digest == "sha256:" + hashlib.sha256(data[:resumed]).hexdigest()
        assert resumed == first_leg  # nothing after the stall was confirmed
        _write(stream, ref, data, resumed, wait=True)
        expected = "sha256:" + hashlib.sha256(data).hexdigest()
        commit = stream.request(
            pb.WriteContentRequest(
                action=pb.COMMIT, ref=ref, offset=len(data), total=len(data), expected=expected
            )
        )
        assert commit.digest == expected
        got = b"".join(r.data for r in stub.Read(pb.ReadContentRequest(digest=expected)))
        assert hashlib.sha256(got).hexdigest() == expected.split(":")[1]
        channel.close()


def test_sigint_exits_130_within_grace(file_store_url: str) -> None:
    args = ["--store", file_store_url, "--node-id", "n1", "--grace", "1"]
    with serve_process("shutdown-sigint", args) as served:
        channel = served.channel()
        stream = WriteStream(served.stub(channel))
        reply = stream.request(
            pb.WriteContentRequest(action=pb.WRITE, ref="r/1/x", offset=0, data=b"abcdef")
        )
        assert reply.offset == 6
        code, elapsed = served.signal_and_wait(signal.SIGINT, timeout=30)
        channel.close()
    assert code == 130
    assert elapsed <= 1 + 5 + MARGIN
