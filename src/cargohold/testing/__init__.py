"""cargohold's conformance suite as a pytest plugin, for cargohold's drivers and third parties'.

A driver package runs the suite with two lines and one fixture (docs/testing.md):

* ``pytest_plugins = ["cargohold.testing.plugin"]`` in its root ``conftest.py`` (markers);
* ``from cargohold.testing.suite import *`` in a test module, next to a ``cargohold_store_url``
  fixture returning the URL of a fresh, empty store of the driver under test.

Only pytest is needed beyond cargohold itself (the ``testing`` extra).
"""

from __future__ import annotations

from .helpers import digest_of, open_small, random_bytes, read_all

__all__ = ["digest_of", "open_small", "random_bytes", "read_all"]
