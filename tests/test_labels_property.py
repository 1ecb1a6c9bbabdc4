"""Property tests: any label set the contract allows round-trips, inline or in a sidecar."""

from __future__ import annotations

import tempfile
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cargohold
from cargohold import Info, InvalidArgumentError
from cargohold.labels import MAX_LABEL_BYTES, validate_labels

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
_labels = st.dictionaries(_text.filter(bool), _text, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labels=_labels, data=st.binary(max_size=64))
def test_labels_round_trip_on_both_layouts(labels: dict[str, str], data: bytes) -> None:
    with tempfile.TemporaryDirectory() as root:
        for url in (f"memory://{uuid.uuid4().hex}", f"file://{root}/s"):
            store = cargohold.open_store(url)
            try:
                with store.writer("r") as writer:
                    writer.write(data)
                    digest = writer.digest()
                    writer.commit(labels=labels)
                assert store.info(digest).labels == labels
                assert [i.labels for i in store.walk()] == [labels]
                info = store.info(digest)
                flipped = {v: k for k, v in labels.items() if v}
                updated = store.update(
                    Info(digest, info.size, info.created_at, info.updated_at, flipped)
                )
                assert updated.labels == flipped == store.info(digest).labels
                assert updated.created_at == info.created_at
            finally:
                store.close()


_long = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1000, max_size=2200)


@given(key=st.one_of(_text, _long), value=st.one_of(_text, _long))
def test_validation_matches_the_contract(key: str, value: str) -> None:
    size = len(key.encode()) + len(value.encode())
    if key and size <= MAX_LABEL_BYTES:
        assert validate_labels({key: value}) == {key: value}
    else:
        try:
            validate_labels({key: value})
        except InvalidArgumentError:
            return
        raise AssertionError("an invalid label was accepted")
