"""The one option parser every driver reads its URL query and keywords with."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

import cargohold
from cargohold import InvalidArgumentError
from cargohold.drivers.options import RENAMED, option, parse_options


@dataclass(frozen=True)
class _Options:
    name: str | None = None
    mode: Literal["a", "b"] = "a"
    part_size: int = option(8 << 20, minimum=1 << 20, maximum=64 << 20, size=True)
    concurrency: int = option(4, minimum=1)
    timeout: float = option(60.0, minimum=1)
    flag: bool = option(True)
    key: str = option("", secret=True)


def _parse(**options: Any) -> _Options:
    return parse_options(_Options, dict(options), "test")


def test_values_from_strings_and_keywords() -> None:
    parsed = _parse(name="x", mode="b", part_size="2097152", concurrency=3, timeout="1.5", flag="0")
    assert parsed == _Options("x", "b", 2 << 20, 3, 1.5, False)
    assert _parse(flag="yes").flag is True
    assert _parse(name="", concurrency=None) == _Options()  # empty keeps the default


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": "many"}, "option concurrency must be an integer, got 'many'"),
        ({"concurrency": 2.5}, "option concurrency must be an integer"),
        ({"concurrency": True}, "option concurrency must be an integer"),
        ({"concurrency": "0"}, "option concurrency must be >= 1, got 0"),
        ({"part_size": str(1 << 19)}, "option part_size must be >= 1 MiB, got 512 KiB"),
        ({"part_size": str(65 << 20)}, "option part_size must be at most 64 MiB, got 65 MiB"),
        ({"timeout": "inf"}, "option timeout must be a finite number"),
        ({"timeout": "nan"}, "option timeout must be a finite number"),
        ({"timeout": "-inf"}, "option timeout must be a finite number"),
        ({"timeout": "soon"}, "option timeout must be a number"),
        ({"mode": "c"}, "option mode must be one of"),
        ({"name": 7}, "option name must be a string"),
        ({"flag": "maybe"}, "option flag must be 0/1 or true/false"),
        ({"colour": "blue"}, r"unknown option\(s\) for test:// stores: colour"),
    ],
)
def test_bad_values_name_the_option(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        _parse(**options)


def test_secret_values_are_not_repeated() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        _parse(key=12345)
    assert "12345" not in str(caught.value)


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_old_names_warn_naming_the_new_one(old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"option {old} is deprecated; use {new}") as got:
        parsed = _parse(**{old: "2097152" if new == "part_size" else "2"})
    assert getattr(parsed, new) == (2 << 20 if new == "part_size" else 2)
    assert got[0].filename == __file__  # attributed to the caller, not to cargohold


def test_an_old_name_reports_its_own_name_in_errors() -> None:
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(InvalidArgumentError, match=r"option block_size must be at most 64 MiB"),
    ):
        _parse(block_size=str(65 << 20))


def test_the_new_name_wins_over_an_old_one() -> None:
    with pytest.warns(DeprecationWarning, match="ignored here: concurrency is given too"):
        assert _parse(concurrency="5", upload_concurrency="9").concurrency == 5


def test_old_names_are_unknown_where_a_driver_has_no_such_option(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="block_size"):
        cargohold.open_store(f"file://{tmp_path}", block_size="1")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("memory://opts", {"min_part_size": "0"}),
        ("memory://opts", {"min_part_size": "inf"}),
        ("file:///tmp/cargohold-opts", {"fsync": "sometimes"}),
    ],
)
def test_builtin_drivers_use_the_parser(url: str, options: dict[str, str]) -> None:
    with pytest.raises(InvalidArgumentError, match=next(iter(options))):
        cargohold.open_store(url, **options)


def test_new_names_do_not_warn(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store = cargohold.open_store(f"file://{tmp_path}?fsync=0", part_size=1 << 20)
        store.close()
