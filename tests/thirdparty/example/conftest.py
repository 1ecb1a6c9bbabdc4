"""The driver package's root conftest: load the conformance suite's plugin."""

pytest_plugins = ["cargohold.testing.plugin"]
