"""Differential test of ``~=`` filters against Go's own ``regexp`` (what containerd runs).

A small Go program (tests/gore2) is built offline with the machine's Go toolchain
(.ci/install/go.sh installs it) and answers, for each pattern, whether ``regexp.Compile``
accepts it and what ``MatchString`` says for each input. cargohold's filters must agree on both,
for a hand-written corpus and for generated patterns. The only tolerated differences are the
documented ones (see ``cargohold.filters_re2``): a pattern over RE2's memory budget or over
cargohold's nesting limit, and ``(?<name>`` on a Go older than 1.22.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cargohold.errors import InvalidArgumentError
from cargohold.filters import parse_filters, quote
from cargohold.filters_re2 import MAX_NESTING

GO_PROGRAM = Path(__file__).parent / "gore2" / "main.go"


@dataclass(frozen=True)
class Answer:
    """Whether a pattern compiles, why not, and its search result for each input."""

    valid: bool
    error: str
    matches: tuple[bool, ...]


GoOracle = Callable[[Sequence[tuple[str, Sequence[str]]]], list[Answer]]


def _wire(text: str) -> str:
    """The bytes Go sees for a Python string (undecodable bytes kept by surrogateescape)."""
    return base64.b64encode(text.encode("utf-8", "surrogateescape")).decode()


@pytest.fixture(scope="session")
def go_version_and_oracle(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, GoOracle]:
    """Build tests/gore2 with the local Go, offline, and return a function that asks it."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is not installed: run .ci/install/go.sh (Debian's golang-go)")
    work = tmp_path_factory.mktemp("gore2")
    binary = work / "gore2"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOTOOLCHAIN": "local",
        "GOPATH": str(work / "gopath"),
        "GOCACHE": str(work / "cache"),
        "CGO_ENABLED": "0",
    }
    subprocess.run(
        [go, "build", "-o", str(binary), str(GO_PROGRAM)],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    version = ""

    def ask(cases: Sequence[tuple[str, Sequence[str]]]) -> list[Answer]:
        nonlocal version
        request = {
            "cases": [
                {"pattern": _wire(pattern), "inputs": [_wire(i) for i in inputs]}
                for pattern, inputs in cases
            ]
        }
        done = subprocess.run(
            [str(binary)],
            input=json.dumps(request).encode(),
            capture_output=True,
            check=True,
            timeout=120,
        )
        reply = json.loads(done.stdout)
        version = reply["go"]
        return [Answer(r["valid"], r["error"], tuple(r["matches"])) for r in reply["results"]]

    ask([("", [""])])
    return version, ask


def _go_before_1_22(version: str) -> bool:
    found = re.match(r"go1\.(\d+)", version)
    return found is not None and int(found.group(1)) < 22


def cargohold_answer(pattern: str, inputs: Sequence[str]) -> Answer:
    """What cargohold's filter ``f~=<pattern>`` says, in the oracle's terms."""
    try:
        matcher = parse_filters("f~=" + quote(pattern, "/"))
    except InvalidArgumentError as exc:
        return Answer(False, str(exc), ())
    return Answer(True, "", tuple(matcher.match(lambda path, v=v: (v, True)) for v in inputs))


def differences(
    version: str, oracle: GoOracle, patterns: Sequence[str], inputs: Sequence[str]
) -> list[str]:
    """Every pattern on which cargohold and Go disagree, described."""
    found = []
    for pattern, go in zip(patterns, oracle([(p, inputs) for p in patterns]), strict=True):
        ours = cargohold_answer(pattern, inputs)
        if ours == go or (not ours.valid and not go.valid):
            continue
        if not ours.valid and go.valid and "regex budget" in ours.error:
            continue  # documented: RE2 compiles within a memory budget, Go does not
        if not ours.valid and go.valid and "nest more than" in ours.error:
            continue  # documented: cargohold's nesting limit is simpler and stricter than Go's
        if ours.valid and not go.valid and "`(?<`" in go.error and _go_before_1_22(version):
            continue  # documented: (?<name> is Go 1.22's syntax, which cargohold takes
        if ours.valid != go.valid:
            found.append(f"{pattern!r}: Go valid={go.valid} {go.error!r}; ours {ours.error!r}")
            continue
        wrong = [v for v, a, b in zip(inputs, ours.matches, go.matches, strict=True) if a != b]
        found.append(f"{pattern!r}: results differ on {wrong!r}")
    return found


# Inputs: ASCII, case-folding partners, scripts, newlines, NUL, empty and undecodable bytes.
INPUTS = [
    "",
    "a",
    "A",
    "aaa",
    "ab",
    "a b",
    "abc\n",
    "a\nb",
    "\n",
    "\r\n",
    "x\ty",
    "\x00",
    "a\x00b",
    "1",
    "٣",  # ARABIC-INDIC DIGIT THREE
    "_",
    "-",
    "]",
    "\\",
    "a\\b",
    "a.b",
    "axb",
    "{,2}",
    "k",
    "K",
    "\u212a",  # KELVIN SIGN
    "s",
    "S",
    "\u017f",  # LATIN SMALL LETTER LONG S
    "ß",
    "\u1e9e",  # LATIN CAPITAL LETTER SHARP S
    "Σ",
    "\u03c3",
    "ς",
    "λόγος",
    "Ω",
    "\u2126",  # OHM SIGN
    "µ",  # MICRO SIGN
    "ǅ",
    "é",
    "É",
    "e\u0301",  # e + COMBINING ACUTE ACCENT
    "牛",
    "\U0001f600",
    "\u00a0",
    "\u2028",
    "\ufffd",
    "\udcff",  # one undecodable byte
    "a\udce2\udc82b",  # a truncated UTF-8 sequence
    "\U0010ffff",
    "sha256:" + "ab" * 32,
    "containerd.io/gc.ref.content.m.0",
]


def _nest(template: str, depth: int, core: str = "a") -> str:
    """``core`` wrapped ``depth`` times in ``template`` (its ``X`` is the inner pattern)."""
    for _ in range(depth):
        core = template.replace("X", core)
    return core


def _factored(n: int) -> str:
    """``ab|aab|aaab|...``: Go factors the common prefixes into an ``n``-deep alternation."""
    return "|".join("a" * i + "b" for i in range(1, n + 1))


PATTERNS = [
    # anchors, flags and newlines
    "",
    "^",
    "$",
    "^$",
    "a",
    "^a",
    "a$",
    "^a$",
    "(?m)^b",
    "(?m)a$",
    "(?m)$",
    "\\Aa",
    "a\\z",
    "\\A\\z",
    "(?m)\\z",
    ".",
    "^.$",
    "(?s).",
    "(?s:.)",
    "(?s)^.$",
    "^..$",
    "[^\\n]",
    "(?U)a+",
    "(?U)a+?",
    "(?i-s)a.",
    "(?i)(?-i)a",
    "x(?i)y|z",
    "(?i:a)b",
    "(?)a",
    "(?i)",
    "(?i:)",
    "a(?m)",
    # case folding
    "(?i)k",
    "(?i)K",
    "(?i)\\x{212a}",
    "(?i)s",
    "(?i)\u017f",
    "(?i)ß",
    "(?i)\\x{1e9e}",
    "(?i)\u03c3",
    "(?i)Σ",
    "(?i)ς",
    "(?i)[\u03c3-\u03c3]",
    "(?i)ω",
    "(?i)\\x{2126}",
    "(?i)µ",
    "(?i)μ",
    "(?i)ǆ",
    "(?i)é",
    "(?i)[k]",
    "(?i)[^k]",
    "(?i)[a-z]",
    "(?i)[^a-z]",
    "(?i)[[:upper:]]",
    "(?i)[[:^lower:]]",
    "(?i)\\pL",
    "(?i)\\p{Lu}",
    "(?i)\\W",
    "(?i)\\Qab\\E",
    # classes: Perl, POSIX, Unicode
    "\\d",
    "\\D",
    "\\s",
    "\\S",
    "\\w",
    "\\W",
    "[\\d\\s]",
    "[\\D]",
    "[^\\D]",
    "[\\s\\S]",
    "[^\\s\\S]",
    "\\b",
    "\\B",
    "\\bé",
    "\\bx",
    "x\\B",
    "a\\b",
    "[[:alpha:]]",
    "[[:^alpha:]]",
    "[[:word:]]+",
    "[[:space:]]",
    "[[:print:]]",
    "[[:punct:]]",
    "[[:xdigit:]]",
    "[[:foo:]]",
    "[[:a]",
    "[[=a=]]",
    "[[.a.]]",
    "\\pL",
    "\\PL",
    "\\pN",
    "\\pZ",
    "\\pC",
    "\\pM",
    "\\p{L}",
    "\\p{Lu}",
    "\\p{Ll}",
    "\\p{Lt}",
    "\\p{Lm}",
    "\\p{Lo}",
    "\\p{Nd}",
    "\\p{Mn}",
    "\\p{Zs}",
    "\\p{Zl}",
    "\\p{Sc}",
    "\\p{So}",
    "\\p{Cc}",
    "\\p{Cf}",
    "\\p{Co}",
    "\\p{Cs}",
    "\\p{Cn}",
    "\\p{LC}",
    "\\p{L&}",
    "\\p{Any}",
    "\\p{Greek}",
    "\\P{Greek}",
    "\\p{^Greek}",
    "\\P{^Greek}",
    "\\p{Greek}+$",
    "\\p{Latin}",
    "\\p{Han}",
    "\\p{Common}",
    "\\p{Inherited}",
    "\\p{Arabic}",
    "\\p{greek}",
    "\\p{IsGreek}",
    "\\p{Script=Greek}",
    "\\p{Zzzz}",
    "\\pX",
    "\\p",
    "\\p{",
    "\\p{}",
    "[\\p{Greek}\\d]",
    "[^\\p{Greek}]",
    "[\\PL]",
    "[^\\x00-\\x{10FFFF}]",
    "[\\x{0}-\\x{10FFFF}]",
    "[]a]",
    "[^]a]",
    "[a-]",
    "[-a]",
    "[a-\\d]",
    "[\\d-z]",
    "[z-a]",
    "[a-a]",
    "[]",
    "[^]",
    "[a",
    "[a-",
    "[\\b]",
    "[(]",
    "[(?P<é>a)]",
    # repetition and its limits
    "a*",
    "a+",
    "a?",
    "a*?",
    "a+?",
    "a??",
    "a{2}",
    "a{2,}",
    "^a{1,2}$",
    "a{0}",
    "a{0,0}",
    "a{,2}",
    "a{01}",
    "a{1,02}",
    "x{2,1}",
    "a{1000}",
    "a{1001}",
    "a{1000,1001}",
    "a{1001,}",
    "a{1000,}",
    "(a{1000}){2}",
    "(a{100}){10}",
    "(a{100}){11}",
    "((a{10}){10}){10}",
    "((a{10}){10}){11}",
    "(a{0}){1001}",
    "(a{1000}){0}",
    "(a{1000}){0,1}",
    "(?:a{2}b{600}){2}",
    "(a*){1000}",
    "(a+)+$",
    "^(a+)+$",
    "(a|aa)+$",
    "a**",
    "a*+",
    "a+?+",
    "a{2}{3}",
    "a{2}*",
    "a{1000}{0}",
    "*a",
    "^*a",
    "$*",
    "\\b*",
    "(?i)*",
    "^ba(?i)*$",
    "(?:)*",
    "()+",
    "(|a)*",
    "(*)",
    "a|*",
    "\\Q\\E*",
    "^\\Qab\\E*$",
    "\\pL{200}",
    "[^a]{1000}",
    "(?s).{1000}",
    "\\p{Greek}{1000}",
    "\\pL{1000}",  # over RE2's budget: documented
    # groups and alternation
    "a|b",
    "a||b",
    "|",
    "(a)",
    "(?:a)",
    "(?P<n>a)",
    "(?<n>a)",
    "(?P<n>a)(?P<n>b)",
    "(?P<>a)",
    "(?P<a-b>a)",
    "(?P<1>a)",
    "(?P<é>a)",
    "(?P<a",
    "(?P=n)",
    "(?=a)",
    "(?!a)",
    "(?<=a)",
    "(?<!a)",
    "(?>a)",
    "(?|a)",
    "(?'n'a)",
    "(?#c)",
    "(?x)a",
    "(?-)a",
    "(?i-)a",
    "(?R)",
    "(?i",
    "(?i:a",
    "(",
    ")",
    "a)",
    "(a|(b|(c)))",
    "(" * 100 + "a" + ")" * 100,
    "(" * 101 + "a" + ")" * 101,
    "(?:" * 150 + "a" + ")" * 150,
    "(a)" * 300,
    "a|" * 300 + "a",
    # the deepest parse trees a filter allows: Go must accept all of these
    _nest("(X)+", MAX_NESTING),
    _nest("(x|Xy)*", MAX_NESTING),
    _nest("((?:x|Xy)*)+", MAX_NESTING // 2, _factored(100)),
    _factored(165),  # common-prefix factoring nests the alternation 165 deep
    _nest("(X)", 999),  # Go's own limit: a parse tree 1000 high
    _nest("(X)", 1000),
    # escapes
    "\\C",
    "[\\C]",
    "\\\\C",
    "\\\\\\C",
    "\\Q\\C\\E",
    "\\Q\\E\\C",
    "\\Q\\\\E\\C",
    "\\Qa.b\\E",
    "\\Qa.b",
    "\\Qa\\\\Eb",
    "\\Q\\\\\\E",
    "\\Q[\\E",
    "\\Q(?P<é>\\E",
    "\\E",
    "a\\E",
    "[\\Q]\\E]",
    "\\1",
    "\\8",
    "\\0",
    "\\01",
    "\\012",
    "\\0123",
    "\\101\\x42\\x{43}\\0",
    "\\x4",
    "\\x41",
    "\\x{41}",
    "\\x{}",
    "\\x{110000}",
    "\\x{10FFFF}",
    "\\x{D800}",
    "\\x{FFFD}",
    "^\\x{FFFD}$",
    "^\\x{FFFD}{2}",
    "[\\x{D800}-\\x{DFFF}]",
    "\\a\\f\\t\\n\\r\\v",
    "\\e",
    "\\cA",
    "\\N{x}",
    "\\o{101}",
    "\\k<n>",
    "\\g1",
    "\\h",
    "\\R",
    "\\X",
    "\\G",
    "\\K",
    "\\Z",
    "\\V",
    "\\H",
    "\\é",
    "\\.",
    "\\_",
    "\\-",
    "\\",
    "a\\",
    # literal text, NUL, non-ASCII and invalid UTF-8 in the pattern
    "\x00",
    "a\x00b",
    "牛",
    "^\\x{1F600}$",
    "😀",
    "e\u0301",
    "\udcff",
    "a\udce2\udc82",
    "sha256:[0-9a-f]{64}$",
    "^containerd\\.io/gc\\.ref\\.content\\.",
]


def test_hand_corpus_agrees_with_go(go_version_and_oracle: tuple[str, GoOracle]) -> None:
    version, oracle = go_version_and_oracle
    assert differences(version, oracle, PATTERNS, INPUTS) == []


def test_the_oracle_is_go(go_version_and_oracle: tuple[str, GoOracle]) -> None:
    version, oracle = go_version_and_oracle
    assert version.startswith("go1.")
    answers = oracle([("\\C", []), ("(a+)+$", ["aaa!", "aaa"]), ("\\p{Greek}", ["\u03b1"])])
    assert answers[0] == Answer(False, "error parsing regexp: invalid escape sequence: `\\C`", ())
    assert answers[1] == Answer(True, "", (False, True))
    assert answers[2] == Answer(True, "", (True,))


# ---- generated patterns -----------------------------------------------------------------------

TOKENS = [
    *"abAKk_0 .-|^$*+?()",
    "\n",
    "é",
    "Σ",
    "\u03c3",
    "ς",
    "\u017f",
    "\u212a",
    "牛",
    "\x00",
    "\udcff",
    "{2}",
    "{1,3}",
    "{0}",
    "{,2}",
    "{2,1}",
    "{1001}",
    "{1000}",
    "(?:",
    "(?i)",
    "(?-i)",
    "(?s)",
    "(?m)",
    "(?U)",
    "(?i:",
    "(?P<n>",
    "(?P<é>",
    "[",
    "]",
    "[^",
    "[:alpha:]",
    "[[:^digit:]]",
    "\\b",
    "\\B",
    "\\A",
    "\\z",
    "\\d",
    "\\w",
    "\\s",
    "\\W",
    "\\pL",
    "\\PL",
    "\\p{Greek}",
    "\\p{Lu}",
    "\\Q",
    "\\E",
    "\\C",
    "\\x41",
    "\\x{3c3}",
    "\\\\",
    "\\",
    "\\.",
    "\\1",
    "\\0",
]
INPUT_CHARS = [
    *"abAKk_0 .-\n",
    "é",
    "É",
    "Σ",
    "\u03c3",
    "ς",
    "\u017f",
    "\u212a",
    "牛",
    "\x00",
    "\udcff",
]

patterns = st.lists(st.sampled_from(TOKENS), max_size=10).map("".join)
inputs = st.lists(st.text(st.sampled_from(INPUT_CHARS), max_size=12), min_size=1, max_size=8)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(patterns, min_size=1, max_size=40), inputs)
def test_generated_patterns_agree_with_go(
    go_version_and_oracle: tuple[str, GoOracle], batch: list[str], values: list[str]
) -> None:
    version, oracle = go_version_and_oracle
    assert differences(version, oracle, batch, values) == []
