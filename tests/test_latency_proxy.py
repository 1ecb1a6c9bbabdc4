"""The latency proxy of the benchmarks and fixtures, in front of a moto server."""

from __future__ import annotations

import time

import boto3
import pytest

from tests.emulators._latency import LatencyProxy
from tests.emulators.moto import CREDENTIALS, S3Endpoint


def _client(url: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def test_every_request_on_a_kept_alive_connection_waits(
    moto_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    with LatencyProxy(moto_endpoint.url, delay=0.05) as proxy:
        client = _client(proxy.url)
        client.head_bucket(Bucket=s3_bucket)  # type: ignore[attr-defined]
        proxy.reset()
        started = time.perf_counter()
        for _ in range(4):
            client.head_bucket(Bucket=s3_bucket)  # type: ignore[attr-defined]
        assert time.perf_counter() - started >= 4 * 0.05
        assert proxy.reset() == {"HEAD": 4}
        data = bytes(range(256)) * 4000
        client.put_object(Bucket=s3_bucket, Key="k", Body=data)  # type: ignore[attr-defined]
        got = client.get_object(Bucket=s3_bucket, Key="k")["Body"].read()  # type: ignore[attr-defined]
        assert got == data
        assert proxy.requests["PUT"] == 1 and proxy.requests["GET"] == 1


def test_bandwidth_cap(moto_endpoint: S3Endpoint, s3_bucket: str) -> None:
    data = b"\x01" * (1024 * 1024)
    _client(moto_endpoint.url).put_object(Bucket=s3_bucket, Key="big", Body=data)  # type: ignore[attr-defined]
    with LatencyProxy(moto_endpoint.url, bandwidth=4 * 1024 * 1024) as proxy:
        client = _client(proxy.url)
        started = time.perf_counter()
        assert client.get_object(Bucket=s3_bucket, Key="big")["Body"].read() == data  # type: ignore[attr-defined]
        assert time.perf_counter() - started >= 0.2


def test_only_loopback_targets() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LatencyProxy("http://192.0.2.1:80")
