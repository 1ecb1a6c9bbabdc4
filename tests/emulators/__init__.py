"""Session-scoped fixtures that start the services the tests need, one module per service.

Each module here is loaded as a pytest plugin by ``tests/conftest.py``. A module that provides a
store for the conformance suite declares ``STORE_KINDS = {"kind": "fixture_name"}``; that fixture
returns a store URL for a fresh, empty store (a new bucket or prefix per test) and sets whatever
environment variables a child process needs to open the same URL.

A service that fails to start fails the tests that need it; nothing is silently skipped.
"""
