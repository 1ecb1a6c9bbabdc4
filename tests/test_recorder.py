"""The request-recording proxy, in front of a real fake-gcs-server process."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from google.api_core import exceptions as api
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from cargohold import open_store, write_blob
from tests.emulators._recorder import RecordedRequest, RecordingProxy
from tests.emulators.recording import RecordedGCS


def _client(url: str) -> storage.Client:
    return storage.Client(
        project="cargohold",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": url},
    )


def _call(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_records_method_path_query_headers_and_status(gcs_recorder: RecordedGCS) -> None:
    proxy, bucket = gcs_recorder.proxy, gcs_recorder.bucket
    query = "uploadType=media&name=a%2Fb&ifGenerationMatch=0"
    url = f"{proxy.url}/upload/storage/v1/b/{bucket}/o?{query}"
    headers = {"Content-Type": "application/octet-stream", "x-goog-meta-k": "v", "Cookie": "c"}
    status, body = _call("POST", url, b"hello", headers)
    assert status == 200
    assert json.loads(body)["name"] == "a/b"
    status, body = _call("GET", f"{proxy.url}/storage/v1/b/{bucket}/o/a%2Fb?alt=media")
    assert (status, body) == (200, b"hello")
    status, _ = _call("GET", f"{proxy.url}/storage/v1/b/{bucket}/o/missing")
    assert status == 404

    upload, download, missing = proxy.requests
    assert (upload.method, upload.path) == ("POST", f"/upload/storage/v1/b/{bucket}/o")
    assert upload.query == {"uploadType": ["media"], "name": ["a/b"], "ifGenerationMatch": ["0"]}
    assert upload.param("ifGenerationMatch") == "0" and upload.param("absent") is None
    assert upload.headers["content-type"] == "application/octet-stream"
    assert upload.headers["content-length"] == "5"
    assert upload.headers["x-goog-meta-k"] == "v"
    assert "cookie" not in upload.headers  # only the chosen headers are kept
    assert (upload.operation, upload.bucket, upload.object_name) == ("upload:media", bucket, "a/b")
    assert upload.status == 200
    assert (download.operation, download.object_name, download.status) == ("download", "a/b", 200)
    assert (missing.operation, missing.object_name, missing.status) == ("get", "missing", 404)

    assert len(proxy.clear()) == 3
    assert proxy.requests == []


def test_sdk_create_only_writes_are_seen_with_their_preconditions(
    gcs_recorder: RecordedGCS,
) -> None:
    """Upload, compose and rewrite with ``if_generation_match=0``, as a create-only commit does."""
    proxy = gcs_recorder.proxy
    bucket = _client(gcs_recorder.url).bucket(gcs_recorder.bucket)
    one, two = bucket.blob("parts/1"), bucket.blob("parts/2")
    one.upload_from_string(b"one", if_generation_match=0)
    two.upload_from_string(b"two", if_generation_match=0)
    target = bucket.blob("blobs/sha256/ab")
    target.compose(
        [one, two],
        if_generation_match=0,
        if_source_generation_match=[one.generation, two.generation],
    )
    copy = bucket.blob("blobs/sha256/cd")
    copy.rewrite(target, if_generation_match=0)
    assert copy.download_as_bytes() == b"onetwo"

    [upload] = proxy.find("upload:multipart", "parts/1")
    assert upload.param("ifGenerationMatch") == "0"
    assert upload.json is not None and upload.json["name"] == "parts/1"  # the metadata part
    [compose] = proxy.find("compose", "blobs/sha256/ab")
    assert compose.method == "POST" and compose.param("ifGenerationMatch") == "0"
    sources = compose.json["sourceObjects"]
    assert [s["name"] for s in sources] == ["parts/1", "parts/2"]
    assert [int(s["objectPreconditions"]["ifGenerationMatch"]) for s in sources] == [
        one.generation,
        two.generation,
    ]
    [rewrite] = proxy.find("rewrite", "blobs/sha256/cd")
    assert rewrite.param("ifGenerationMatch") == "0" and rewrite.bucket == gcs_recorder.bucket
    assert rewrite.status == 200

    # A refused create-only upload is recorded with the emulator's answer.
    with pytest.raises(api.PreconditionFailed):
        one.upload_from_string(b"again", if_generation_match=0)
    assert proxy.find("upload:multipart", "parts/1")[-1].status == 412


def test_resumable_uploads_come_back_through_the_proxy(gcs_recorder: RecordedGCS) -> None:
    proxy = gcs_recorder.proxy
    blob = _client(gcs_recorder.url).bucket(gcs_recorder.bucket).blob("big")
    data = bytes(range(256)) * 2048  # 512 KiB: two chunks of 256 KiB
    with blob.open("wb", chunk_size=256 * 1024, if_generation_match=0) as writer:
        writer.write(data)
    [start] = proxy.find("upload:resumable")
    assert start.param("ifGenerationMatch") == "0" and start.object_name == "big"
    chunks = proxy.find("upload:resumable-data")
    assert len(chunks) >= 2 and {c.method for c in chunks} == {"PUT"}  # plus a final empty one
    assert all(c.headers["content-range"].startswith("bytes ") for c in chunks)
    assert blob.download_as_bytes() == data  # a streamed response passes whole

    # A multipart upload names its object in the metadata part, however big the media part.
    medium = blob.bucket.blob("medium")
    medium.upload_from_string(data, if_generation_match=0)
    [upload] = proxy.find("upload:multipart", "medium")
    assert upload.param("ifGenerationMatch") == "0" and upload.json["name"] == "medium"


def test_concurrent_clients_are_all_recorded(gcs_recorder: RecordedGCS) -> None:
    bucket = _client(gcs_recorder.url).bucket(gcs_recorder.bucket)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                bucket.blob(f"w{n}/{i}").upload_from_string(b"%d" % i, if_generation_match=0)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    uploads = gcs_recorder.proxy.find("upload:multipart")
    assert sorted(u.object_name or "" for u in uploads) == sorted(
        f"w{n}/{i}" for n in range(4) for i in range(5)
    )
    assert {u.status for u in uploads} == {200}


def test_operations_are_named_from_the_path() -> None:
    def op(method: str, path: str, **query: Any) -> tuple[str, str | None, str | None]:
        r = RecordedRequest(method, path, {k: [v] for k, v in query.items()}, {})
        return r.operation, r.bucket, r.object_name

    o = "/storage/v1/b/bk/o"
    assert op("GET", o) == ("list", "bk", None)
    assert op("GET", f"{o}/a%2Fb") == ("get", "bk", "a/b")
    assert op("GET", f"{o}/k", alt="media") == ("download", "bk", "k")
    assert op("GET", "/download/storage/v1/b/bk/o/k", alt="media") == ("download", "bk", "k")
    assert op("PUT", f"{o}/k") == ("update", "bk", "k")
    assert op("PATCH", f"{o}/k") == ("patch", "bk", "k")
    assert op("DELETE", f"{o}/k") == ("delete", "bk", "k")
    assert op("POST", f"{o}/k/compose") == ("compose", "bk", "k")
    assert op("POST", f"{o}/s/rewriteTo/b/dst/o/d%2Fe") == ("rewrite", "dst", "d/e")
    assert op("POST", f"{o}/s/copyTo/b/dst/o/d") == ("copy", "dst", "d")
    assert op("POST", "/upload/storage/v1/b/bk/o", uploadType="resumable", name="n") == (
        "upload:resumable",
        "bk",
        "n",
    )
    assert op("POST", "/storage/v1/b", project="p") == ("bucket", None, None)
    assert op("POST", "/batch/storage/v1") == ("batch", None, None)


def test_stop_is_prompt_with_an_idle_kept_alive_connection(gcs_endpoint: str) -> None:
    proxy = RecordingProxy(gcs_endpoint).start()
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        sock.sendall(b"GET /storage/v1/b?project=p HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(12).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        proxy.stop()
        assert time.monotonic() - started < 5
    finally:
        sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


def test_an_unreachable_emulator_is_a_502() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, and nothing listens on it
    with RecordingProxy(f"http://127.0.0.1:{port}") as proxy:
        status, _ = _call("GET", f"{proxy.url}/storage/v1/b")
        assert status == 502
        assert [r.status for r in proxy.requests] == [502]


def test_only_loopback_targets() -> None:
    with pytest.raises(ValueError, match="loopback"):
        RecordingProxy("http://192.0.2.1:80")


_WRITES = ("upload:multipart", "upload:media", "upload:resumable", "compose", "rewrite", "copy")


@pytest.mark.parametrize("size", [1000, 3 * 256 * 1024 + 17], ids=["one-put", "parts"])
def test_a_store_commit_is_create_only_on_the_wire(gcs_recorder: RecordedGCS, size: int) -> None:
    """What the recorder is for: the write that publishes a blob carries ``ifGenerationMatch=0``."""
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open_store(gcs_recorder.store_url, part_size=256 * 1024) as store:
        write_blob(store, "ref-1", io.BytesIO(data), expected=digest, size=size)
        assert store.info(digest).size == size
    suffix = "/blobs/sha256/" + digest.removeprefix("sha256:")
    writes = [
        r
        for r in gcs_recorder.proxy.requests
        if r.operation in _WRITES and (r.object_name or "").endswith(suffix)
    ]
    assert writes, [(r.operation, r.object_name) for r in gcs_recorder.proxy.requests]
    final = writes[-1]
    assert final.param("ifGenerationMatch") == "0"
    assert final.status == 200
