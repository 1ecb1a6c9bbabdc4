"""cargohold's conformance suite (cargohold.testing) on every store kind of tests/conftest.py.

The tests live in the package, so a third-party driver runs the very same ones (see
docs/testing.md); ``cargohold_store_url`` comes from tests/conftest.py, once per kind.
"""

from cargohold.testing.suite import *  # noqa: F403
