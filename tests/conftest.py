"""Test configuration: loads every emulator module and builds the list of store kinds.

The conformance suite runs once per store kind. ``memory`` and ``file`` are built in; each
module under ``tests/emulators/`` adds the kinds it declares in ``STORE_KINDS``. Set
``CARGOHOLD_TEST_STORES=s3,file`` to run a subset. Kinds a module declares in
``OPT_IN_STORE_KINDS`` (slow servers with a tox environment of their own, like LocalStack) run
only when named there.
"""

from __future__ import annotations

import importlib
import json
import os
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_EMULATOR_DIR = Path(__file__).parent / "emulators"
_EMULATOR_MODULES = sorted(
    f"tests.emulators.{p.stem}" for p in _EMULATOR_DIR.glob("*.py") if not p.stem.startswith("_")
)
# The conformance suite's markers; tests/conformance/test_suite.py runs the suite itself.
pytest_plugins = ["cargohold.testing.plugin", *_EMULATOR_MODULES]
pytest.register_assert_rewrite(*_EMULATOR_MODULES)


def _store_kinds() -> dict[str, str]:
    kinds = {"memory": "memory_store_url", "file": "file_store_url"}
    opt_in: dict[str, str] = {}
    for name in _EMULATOR_MODULES:
        module = importlib.import_module(name)
        kinds.update(getattr(module, "STORE_KINDS", {}))
        opt_in.update(getattr(module, "OPT_IN_STORE_KINDS", {}))
    wanted = os.environ.get("CARGOHOLD_TEST_STORES")
    if wanted:
        kinds.update(opt_in)
        names = [w.strip() for w in wanted.split(",") if w.strip()]
        unknown = set(names) - set(kinds)
        if unknown:
            raise pytest.UsageError(f"CARGOHOLD_TEST_STORES names unknown kinds: {unknown}")
        kinds = {k: kinds[k] for k in names}
    return kinds


STORE_KINDS = _store_kinds()


@pytest.fixture
def memory_store_url() -> str:
    return f"memory://{uuid.uuid4().hex}/store"


@pytest.fixture
def file_store_url(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'store'}"


@pytest.fixture(params=list(STORE_KINDS))
def store_url(request: pytest.FixtureRequest) -> str:
    """A URL of a fresh, empty store, once per store kind."""
    url: str = request.getfixturevalue(STORE_KINDS[request.param])
    return url


@pytest.fixture
def cargohold_store_url(store_url: str) -> str:
    """The conformance suite's one fixture (see docs/testing.md): every kind's fresh store."""
    return store_url


def _gcs_object_names(endpoint: str, bucket: str, prefix: str) -> list[str]:
    """Every object name under ``prefix`` in the emulator's bucket (its JSON API, paged)."""
    names: list[str] = []
    token = ""
    while True:
        query = urllib.parse.urlencode(
            {"prefix": prefix, "pageToken": token} if token else {"prefix": prefix}
        )
        with urllib.request.urlopen(f"{endpoint}/storage/v1/b/{bucket}/o?{query}", timeout=30) as r:
            page = json.loads(r.read())
        names.extend(item["name"] for item in page.get("items", []))
        token = page.get("nextPageToken", "")
        if not token:
            return names


@pytest.fixture
def cargohold_hidden_objects(
    request: pytest.FixtureRequest, store_url: str
) -> Callable[[str], list[str]] | None:
    """For the leftover check: the GCS driver's commit claims (``<key>.~parts/claim``), which
    neither its ``list`` nor its ``list_uploads`` shows (its sessions' objects are in the
    latter), seen in the emulator's own listing."""
    url = urllib.parse.urlsplit(store_url)
    if url.scheme not in ("gs", "gcs"):
        return None
    endpoint: str = request.getfixturevalue("gcs_endpoint")

    def hidden(prefix: str) -> list[str]:
        names = _gcs_object_names(endpoint, url.netloc, prefix)
        return [n for n in names if "/" not in n.rpartition(".~parts/")[2] and ".~parts/" in n]

    return hidden


@pytest.fixture
def store(store_url: str) -> Iterator[object]:
    import cargohold

    with cargohold.open_store(store_url) as opened:
        yield opened
