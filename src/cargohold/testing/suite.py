"""The whole conformance suite in one namespace, for ``from cargohold.testing.suite import *``.

pytest collects test functions from a test module's namespace, wherever they were defined; this
module gathers every test and fixture of ``cargohold.testing.conformance`` (and the shared
fixtures of ``cargohold.testing.fixtures``) into ``__all__``, so one star import in a driver's
test module runs the suite there, against that module's ``cargohold_store_url``. A module-level
``pytestmark`` of a suite module is put on each of its tests instead (a star import would
otherwise carry it onto the importing module's own tests).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

from . import conformance, fixtures

__all__: list[str] = []


def _suite_modules() -> list[ModuleType]:
    names = sorted(
        info.name
        for info in pkgutil.iter_modules(conformance.__path__)
        if info.name.startswith("test_")
    )
    return [importlib.import_module(f"{conformance.__name__}.{name}") for name in names]


def _is_fixture(obj: Any) -> bool:
    # pytest >= 8.4 wraps fixtures in an object with a marker; older ones tag the function.
    return hasattr(obj, "_fixture_function_marker") or hasattr(obj, "_pytestfixturefunction")


def _gather() -> None:
    seen: dict[str, str] = {}
    for module in [fixtures, *_suite_modules()]:
        marks = getattr(module, "pytestmark", [])
        marks = marks if isinstance(marks, list) else [marks]
        for name, obj in vars(module).items():
            is_test = name.startswith("test_") and callable(obj)
            if not (is_test or _is_fixture(obj)):
                continue
            if getattr(obj, "__module__", module.__name__) != module.__name__:
                continue  # imported from elsewhere (fixtures into a test module, say)
            if name in seen:
                raise RuntimeError(f"{name} is defined in both {seen[name]} and {module.__name__}")
            seen[name] = module.__name__
            if is_test:
                for mark in marks:
                    obj = mark(obj)
            globals()[name] = obj
            __all__.append(name)


_gather()
