"""Read-ahead seen on the wire: 20 ms before every request, counted by the latency proxy."""

from __future__ import annotations

import cargohold
from cargohold import Descriptor
from cargohold.testing.helpers import digest_of, random_bytes
from tests.emulators._latency import LatencyProxy
from tests.emulators.moto import S3Endpoint

MiB = 1024 * 1024
PART = 5 * MiB


def test_sequential_32k_reads_cost_one_get_per_window(
    moto_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    data = random_bytes(4 * PART + 12_345, seed=90)
    digest = digest_of(data)
    with LatencyProxy(moto_endpoint.url, delay=0.02) as proxy:
        url = S3Endpoint(proxy.url, owned=False, reset_path=None).store_url(s3_bucket)
        store = cargohold.open_store(url, part_size=PART)
        try:
            with store.writer("wire", Descriptor(digest=digest, size=len(data))) as writer:
                writer.write(data)
                writer.commit(len(data), digest)
            proxy.reset()
            out = bytearray()
            with store.reader_at(digest) as reader:
                while chunk := reader.read_at(len(out), 32 * 1024):
                    out += chunk
            counts = proxy.reset()
        finally:
            store.close()
    assert bytes(out) == data
    windows = -(-len(data) // PART)
    assert counts == {"HEAD": 1, "GET (ranged)": windows}, counts
