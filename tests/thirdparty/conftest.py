"""example/ is a third party's driver package and its tests, run by test_thirdparty.py in a
pytest of its own (its conftest.py declares pytest_plugins, which only a root conftest may)."""

collect_ignore = ["example"]
