"""Request-recording tests: the preconditions GCS enforces are on the wire.

fake-gcs-server 1.54 enforces ``ifGenerationMatch`` only on multipart uploads; it ignores it on
media uploads, compose, rewrite, metadata updates and delete. These tests prove the driver sends
it there anyway, so real GCS enforces what the emulator cannot show (test_create_only.py runs
the claim-free mode behind a proxy that enforces it).
"""

from __future__ import annotations

import json

from cargohold.drivers.base import CREATE_ONLY, IfMatch
from cargohold.drivers.gcs import GCSDriver

from .conftest import Recorder


def _with(recorder: Recorder, method: str, fragment: str) -> list[dict[str, str]]:
    return [r.query for r in recorder.requests if r.method == method and fragment in r.path]


def test_create_only_put_sends_generation_zero(gcs_driver: GCSDriver, recorder: Recorder) -> None:
    gcs_driver.put("k", b"x", precondition=CREATE_ONLY)
    [query] = _with(recorder, "POST", "/upload/")
    assert query["ifGenerationMatch"] == "0"
    assert query["uploadType"] == "multipart"


def test_if_match_put_sends_generation_and_metageneration(
    gcs_driver: GCSDriver, recorder: Recorder
) -> None:
    etag = gcs_driver.put("k", b"x")
    recorder.clear()
    gcs_driver.put("k", b"y", precondition=IfMatch(etag))
    generation, metageneration = etag.split(".")
    [query] = _with(recorder, "POST", "/upload/")
    assert (query["ifGenerationMatch"], query["ifMetagenerationMatch"]) == (
        generation,
        metageneration,
    )


def test_create_only_compose_sends_all_preconditions(
    gcs_driver: GCSDriver, recorder: Recorder
) -> None:
    upload_id = gcs_driver.start_upload("k")
    parts = [gcs_driver.upload_part("k", upload_id, n, b"p%d" % n) for n in (1, 2)]
    recorder.clear()
    gcs_driver.complete_upload("k", upload_id, parts, precondition=CREATE_ONLY)
    [claim] = [q for q in _with(recorder, "POST", "/upload/")]
    assert claim["ifGenerationMatch"] == "0"  # the claim: an upload the emulator enforces
    composes = [r for r in recorder.requests if r.path.endswith("/compose")]
    assert len(composes) == 1
    assert composes[0].path.endswith("/o/k/compose")
    assert composes[0].query["ifGenerationMatch"] == "0"
    deletes = [r for r in recorder.requests if r.method == "DELETE" and "claim" in r.path]
    assert len(deletes) == 1 and "ifGenerationMatch" in deletes[0].query


def test_compose_body_names_source_generations(gcs_driver: GCSDriver) -> None:
    """The compose body carries ifGenerationMatch for every source part."""
    bodies: list[bytes] = []
    session = gcs_driver.client._http
    original = session.request

    def request(method: str, url: str, *args: object, **kwargs: object) -> object:
        if url.split("?")[0].endswith("/compose"):
            data = kwargs.get("data")
            bodies.append(data if isinstance(data, bytes) else str(data).encode())
        return original(method, url, *args, **kwargs)

    session.request = request
    upload_id = gcs_driver.start_upload("k")
    parts = [gcs_driver.upload_part("k", upload_id, n, b"p") for n in (1, 2)]
    gcs_driver.complete_upload("k", upload_id, parts)
    [body] = bodies
    sources = json.loads(body)["sourceObjects"]
    sent = [str(s["objectPreconditions"]["ifGenerationMatch"]) for s in sources]
    assert sent == [part.etag for part in parts]


def test_create_only_copy_sends_generation_zero(gcs_driver: GCSDriver, recorder: Recorder) -> None:
    gcs_driver.put("src", b"x")
    recorder.clear()
    gcs_driver.copy("src", "dst", precondition=CREATE_ONLY)
    [rewrite] = [r for r in recorder.requests if "/rewriteTo/" in r.path]
    assert rewrite.query["ifGenerationMatch"] == "0"


def test_delete_and_set_metadata_send_the_etag(gcs_driver: GCSDriver, recorder: Recorder) -> None:
    etag = gcs_driver.put("k", b"x")
    generation, metageneration = etag.split(".")
    recorder.clear()
    gcs_driver.set_metadata("k", {"a": "b"}, precondition=IfMatch(etag))
    [update] = [r for r in recorder.requests if r.method == "PUT"]
    assert update.query["ifGenerationMatch"] == generation
    assert update.query["ifMetagenerationMatch"] == metageneration
    etag = gcs_driver.head("k").etag
    recorder.clear()
    gcs_driver.delete("k", precondition=IfMatch(etag))
    [delete] = [r for r in recorder.requests if r.method == "DELETE"]
    assert delete.query["ifGenerationMatch"] == etag.split(".")[0]
